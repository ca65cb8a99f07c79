//! `sightline inspect segment FILE`: where a logs segment's bytes go.

use std::path::Path;

use anyhow::{Context, Result};

use sightline_store::segment::logs::inspect;

pub fn segment(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let st = inspect(&bytes).with_context(|| format!("inspect {}", file.display()))?;
    let per_row = |b: u64| {
        if st.rows == 0 {
            0.0
        } else {
            b as f64 / st.rows as f64
        }
    };
    println!(
        "{}: {} rows, {} streams, {} blocks",
        file.display(),
        st.rows,
        st.streams,
        st.blocks
    );
    println!("{:<28} {:>12} {:>10}", "part", "bytes", "per row");
    for (name, b) in [
        ("file", st.file_bytes),
        ("footer (incl. blooms)", st.footer_bytes),
        ("  blooms, uncompressed", st.bloom_bytes),
        ("ts column", st.ts_bytes),
        ("line column", st.line_bytes),
        ("  lines, raw", st.line_raw_bytes),
        ("metadata column", st.metadata_bytes),
    ] {
        println!("{name:<28} {b:>12} {:>10.2}", per_row(b));
    }
    println!("metadata by field (raw → compressed alone):");
    for (name, (raw, z)) in &st.metadata_by_name {
        println!("  {name:<26} {raw:>12} {z:>10} {:>10.2}/row", per_row(*z));
    }
    Ok(())
}
