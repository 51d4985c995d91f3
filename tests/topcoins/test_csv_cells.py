import pytest

from topcoins.csv_cells import spreadsheet_safe


@pytest.mark.parametrize(
    "cell", ['=HYPERLINK("http://x")', "+1", "-1", "@SUM(A1:A9)", "\tBTC", "\rBTC"]
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["BTC", "HOT*", "1000SATS", "", "a=b", "'quoted"])
def test_other_cells_are_left_alone(cell):
    assert spreadsheet_safe(cell) == cell
