//! One test per script in `testdata/`.

use super::super::promqltest::run_file;

macro_rules! scripts {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_file($file);
            }
        )*
    };
}

scripts! {
    aggregations => "aggregations.test",
    at_modifier => "at_modifier.test",
    combinations => "combinations.test",
    edge_cases => "edge_cases.test",
    elementary => "elementary.test",
    errors => "errors.test",
    histograms => "histograms.test",
    labels => "labels.test",
    matchers => "matchers.test",
    math => "math.test",
    operators => "operators.test",
    random => "random.test",
    range_functions => "range_functions.test",
    selectors => "selectors.test",
    staleness => "staleness.test",
    subqueries => "subqueries.test",
}
