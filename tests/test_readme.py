"""The README's one-paragraph answer quotes the paper profile's verdict counts: they must be those of the
committed ``results/paper/summary.json`` (rebuild the sentence when a verdict changes)."""
import json
import re

from fnlib import results, summary
from fnlib.claims.verdict import Verdict


def test_the_readme_answer_matches_the_paper_summary():
    text = (results.PROJECT_ROOT / "README.md").read_text()
    rows = [r for r in json.loads((results.PROJECT_ROOT / "results" / "paper" / "summary.json").read_text())["rows"]
            if r["kind"] in ("number", "claim")]
    pattern = (r"of the paper's (\d+) testable numbers and claims, (\d+) are reproduced, (\d+) are not, "
               r"(\d+) (?:is|are) inconclusive and (\d+) \(cited values\) get no verdict").replace(" ", r"\s+")
    m = re.search(pattern, text)             # any line breaks in the paragraph
    assert m, "the README's answer paragraph has changed shape; update this test with it"
    assert [int(x) for x in m.groups()] == [len(rows)] + [summary.tally(rows, v) for v in
                                                          (Verdict.REPRODUCED, Verdict.NOT, Verdict.INCONCLUSIVE,
                                                           Verdict.NO_VERDICT)]
