"""The released-family tables: where a preset leaves the paper's rule."""

from scalesearch.scaling import PAPER_RULE, preset
from scalesearch.tables import deviations


def test_table_deviations_from_rule():
    assert deviations(preset("d7"), 7, PAPER_RULE.values(7)) == [
        "resolution 1536 (rule 1408)", "fpn_channels 384 (rule 520)", "fpn_repeats 8 (rule 10)",
        "backbone B6 (rule B7)", "fusion sum (rule fast)", "anchor_scale 5.0 (rule 4.0)"]
    assert deviations(preset("d2"), 2, PAPER_RULE.values(2)) == ["fpn_channels 112 (rule 120)"]
    assert deviations(preset("d7x"), None, None) == ["not on the rule (no phi)"]
