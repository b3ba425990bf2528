"""Shared by the book's chapter pages (not part of fnlib, no torch).

Which profile the book shows, that profile's ``summary.json``, the banner that names the profile on every
page, and glue helpers that always glue a value (``n/a`` when a result is missing) so that no
``{glue:text}`` reference in the prose is ever left dangling.

The profile is ``$FNLIB_PROFILE`` when set, else ``paper`` (whatever of it has landed; the banner lists
the runs still pending). Every page reads only results files (SPEC §4), never models.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import HTML, Markdown, display
from matplotlib.figure import Figure
from myst_nb import glue as _glue

from fnlib import plots, profiles, results, stats
from fnlib.claims import sensitivity
from fnlib import summary as fsummary

# figures: the fig* functions return matplotlib Figures; make the kernel render them as PNG
_ip = get_ipython()
if _ip is not None:
    _ip.run_line_magic("matplotlib", "inline")
    _ip.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
matplotlib.rcParams["figure.dpi"] = 110

NA = "n/a"
ROOT = results.work_root()
RESULTS = ROOT / "results"
DATASETS = ("mnist", "cifar10")
DNAME = plots.DATASET_NAMES
ANAME = plots.ARCH_NAMES


def choose_profile() -> str:
    """``$FNLIB_PROFILE``, else paper — never another profile in silence (the banner says what is missing)."""
    return os.environ.get("FNLIB_PROFILE", "").strip() or "paper"


PROFILE = choose_profile()
PROFILE_DIR = RESULTS / PROFILE
SUMMARY_PATH = PROFILE_DIR / "summary.json"
SUMMARY: dict | None = json.loads(SUMMARY_PATH.read_text()) if SUMMARY_PATH.is_file() else None
try:
    PROFILE_SPEC: profiles.Profile | None = profiles.get(PROFILE)
except ValueError:
    PROFILE_SPEC = None

if SUMMARY is not None:
    REF_ARCH = SUMMARY["reference_arch"]
    REF_EPOCHS = {int(k): int(v) for k, v in SUMMARY["reference_epochs"].items()}
elif PROFILE_SPEC is not None:
    REF_ARCH, REF_EPOCHS = fsummary.reference(PROFILE_SPEC)
else:
    REF_ARCH, REF_EPOCHS = "resnet50", {10: 10, 50: 50, 100: 100}
PAPER = fsummary.paper_values()


def has_results() -> bool:
    return SUMMARY is not None


def run_dir(dataset: str, arch: str | None = None) -> Path:
    return PROFILE_DIR / dataset / (arch or REF_ARCH)


def epoch_dir(dataset: str, epoch: int, arch: str | None = None) -> Path:
    return run_dir(dataset, arch) / f"e{epoch}"


def model_name(dataset: str, epoch=None, arch: str | None = None) -> str:
    s = f"{DNAME.get(dataset, dataset)} {ANAME.get(arch or REF_ARCH, arch or REF_ARCH)}"
    return s + (f" @{epoch}" if epoch is not None else "")


# ------------------------------------------------------------------------------------------------ banner
def banner(full: bool = False) -> None:
    """The profile that produced the numbers of the page: in full on the intro (``full``), one line elsewhere."""
    if not full:
        display(Markdown(banner_line()))
        return
    if SUMMARY is not None:
        desc = SUMMARY.get("description") or PROFILE
        same = REF_ARCH == "resnet50" and all(REF_EPOCHS[e] == e for e in (10, 50, 100))
        ref = ("The paper's numbers are compared with ResNet-50 at 10 / 50 / 100 epochs, as in the paper."
               if same else
               f"The paper's ResNet-50 at 10 / 50 / 100 epochs is stood in for by "
               f"**{ANAME.get(REF_ARCH, REF_ARCH)} at epochs {REF_EPOCHS[10]} / {REF_EPOCHS[50]} / "
               f"{REF_EPOCHS[100]}**.")
        kind, title = ("note", f"Profile: {PROFILE}") if PROFILE == "paper" else \
            ("warning", f"Profile: {PROFILE} — not paper scale")
        if mixed():
            kind, title = "warning", title + " — some results come from an earlier training"
        body = (f"The results on this page — numbers, tables, figures — come from `results/{PROFILE}/`: {desc}. {ref} "
                f"Another profile: `FNLIB_PROFILE=<name>` when building (see {{doc}}`/book/rerun`).\n\n"
                + where_computed())
    else:
        desc = PROFILE_SPEC.description if PROFILE_SPEC is not None else "an unknown profile"
        kind, title = "error", f"Profile: {PROFILE} — no results yet"
        body = (f"`results/{PROFILE}/summary.json` does not exist, so this page shows no numbers "
                f"(they read `n/a`). The profile is: {desc}. Produce it with "
                f"`python -m fnlib run --profile {PROFILE}`"
                + (" (hours on a CPU, resumable; `make book` never starts it)" if PROFILE == "paper" else
                   f" (or `make book PROFILE={PROFILE}`)")
                + f", then build the book again; see {{doc}}`/book/rerun`.\n\n" + where_computed())
    display(Markdown(f":::{{admonition}} {title}\n:class: {kind}\n{body}\n:::"))


def banner_line() -> str:
    """One line: the profile, its reference models, how many runs have landed, and a link to the full banner."""
    if SUMMARY is None:
        return (f":::{{warning}}\nProfile **{PROFILE}**: no results yet (`results/{PROFILE}/summary.json` is missing); "
                "numbers read n/a. See {doc}`/book/intro`.\n:::")
    runs = PROFILE_SPEC.runs() if PROFILE_SPEC is not None else []
    done = [r for r in runs if (SUMMARY.get("provenance") or {}).get("/".join(r))]
    todo = [f"{DNAME.get(d, d)} {ANAME.get(a, a)}" for d, a in runs if (d, a) not in done]
    kind = "note" if PROFILE == "paper" and not mixed() else "warning"
    scale = "" if PROFILE == "paper" else " — below paper scale, a check of the machinery"
    return (f":::{{{kind}}}\nProfile **{PROFILE}**{scale}: {ANAME.get(REF_ARCH, REF_ARCH)} at epochs "
            f"{REF_EPOCHS[10]} / {REF_EPOCHS[50]} / {REF_EPOCHS[100]}; {len(done)} of {len(runs)} runs landed"
            + (f" ({', '.join(todo)} not run)" if todo else "") + ". {doc}`Where each was computed </book/intro>`.\n:::")


def mixed() -> dict:
    """``{run: [sentence, …]}`` for every run whose results come from more than one training
    (:func:`fnlib.lineage.problems`, recorded in ``summary.json``)."""
    prov = (SUMMARY or {}).get("provenance", {})
    return {run: info["mixed"] for run, info in prov.items() if info.get("mixed")}


def where_computed() -> str:
    """One line per run of the profile: trained how far, how long, on what, in which precision; or pending."""
    prov = (SUMMARY or {}).get("provenance", {})
    lines = []
    runs = PROFILE_SPEC.runs() if PROFILE_SPEC is not None else [tuple(k.split("/")) for k in prov]
    for dataset, arch in runs:
        name = f"{DNAME.get(dataset, dataset)} {ANAME.get(arch, arch)}"
        info = prov.get(f"{dataset}/{arch}")
        if not info:
            lines.append(f"- {name}: **pending** (not run yet)")
            continue
        total = max(PROFILE_SPEC.epochs) if PROFILE_SPEC is not None else info.get("epochs_done")
        done = info.get("epochs_done") or total
        landed = sorted(int(p.name[1:]) for p in run_dir(dataset, arch).glob("e*") if (p / "attack.csv").exists())
        secs = info.get("train_seconds") or 0
        took = f"{secs / 3600:.2f} h" if secs >= 3600 else f"{secs / 60:.1f} min"
        trained_on = [info["gpu"]] if info.get("gpu") else info.get("cpus") or [info.get("cpu", "?")]
        where = ", ".join(trained_on)
        how = {("gemm",): " with weight gradients by one GEMM", ("gemm", "torch"): ", weight gradients by one GEMM "
               "in some sessions, by PyTorch in others"}.get(tuple(info.get("weight_grads") or ()), "")
        lines.append(f"- {name}: trained {done} of {total} epochs in {took} on {where} "
                     f"({info.get('precision', 'fp32')} training{how}, fp32 evaluation, "
                     f"{info.get('cpu_threads', '?')} threads); results landed for {'epoch' if len(landed) == 1 else 'epochs'} {', '.join(map(str, landed)) or 'none yet'}"
                     + ("" if done >= total else " — **in progress**")
                     + "".join(f"; **mixed**: {m}" for m in info.get("mixed") or [])
                     + "".join(f" (the epoch-{e} results were computed on {o})"
                               for e, o in (info.get("mixed_origin") or {}).items())
                     + elsewhere(info, trained_on)
                     + (f" (`python -m fnlib run --profile {PROFILE} --only {dataset}/{arch}` redoes them on the "
                        f"machine that holds its checkpoints; elsewhere add `--force`, which trains it again)"
                        if info.get("mixed") else ""))
    return "Where each run was computed:\n\n" + "\n".join(lines) if lines else ""


def elsewhere(info: dict, trained_on: list[str]) -> str:
    """'; the epoch-10 analyses ran on …' for the checkpoints of a run whose analyses were computed on another
    processor than its training (kept when a retraining gave the same weights back); '' otherwise."""
    mixed = {str(e) for e in info.get("mixed_origin") or {}}        # already named, with their training
    other = {str(e): procs for e, procs in (info.get("analysed_on") or {}).items()
             if str(e) not in mixed and set(procs) - set(trained_on)}
    return "".join(f"; the epoch-{e} analyses ran on {' and '.join(procs)}"
                   + (" (some steps on each; every results JSON file names its processor)" if len(procs) > 1 else "")
                   for e, procs in other.items())


def step_times(field: str = "seconds") -> pd.DataFrame | None:
    """Per run (columns) and task (rows), from the runs' ``steps.json`` ledgers: the minutes each executed
    notebook took, with a total row, or with ``field="peak_rss_gib"`` the peak memory of its kernel (GiB,
    recorded by the pipeline since it measures it: :mod:`fnlib.peakmem`). None when nothing is recorded."""
    cols = {}
    for path in sorted(PROFILE_DIR.glob("*/*/steps.json")):
        run = f"{DNAME.get(path.parent.parent.name, path.parent.parent.name)} {ANAME.get(path.parent.name, path.parent.name)}"
        got = {task: v[field] for task, v in read_json(path).items() if field in v}
        if got:
            cols[run] = got
    if not cols:
        return None
    df = pd.DataFrame(cols)
    df = df.loc[sorted(df.index, key=lambda task: (task.rsplit("_e", 1)[0], int(task.rsplit("_e", 1)[1])))]
    if field != "seconds":
        return df.rename_axis("task (peak memory, GiB)")
    df = df / 60
    df.loc["total"] = df.sum(min_count=1)
    return df.rename_axis("task (minutes)")


# -------------------------------------------------------------------------------------------------- glue
def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


def fmt(value, spec: str = ".2f") -> str:
    """A number as text (``n/a`` when missing); strings pass through."""
    if _missing(value):
        return NA
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, spec) for v in value) if value else NA
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) and spec.endswith("d"):
        return format(int(value), spec)
    return format(float(value), spec)


def glue(name: str, value, spec: str = ".2f") -> str:
    """Glue a formatted, plain-Python string (never a numpy repr) for ``{glue:text}`` in the prose."""
    text = fmt(value, spec)
    _glue(name, text, display=False)
    return text


def glue_fig(name: str, make, *args, **kw) -> None:
    """Glue the Figure that ``make(*args, **kw)`` draws, or a placeholder saying why there is none
    (returns nothing, so that a cell ending with it does not display the figure a second time)."""
    try:
        fig = make(*args, **kw)
    except FileNotFoundError as exc:
        if exc.filename and Path(exc.filename).resolve().is_relative_to(RESULTS.resolve()):
            # a run that has not landed: say which results file, relative to the project
            fig = placeholder(f"pending in profile '{PROFILE}': not computed yet\n"
                              f"({os.path.relpath(exc.filename, ROOT)})")
        else:
            fig = placeholder(f"no results for this figure in profile '{PROFILE}'\n(FileNotFoundError: "
                              f"{str(exc)[:90]})")
    except (KeyError, ValueError, IndexError) as exc:
        fig = placeholder(f"no results for this figure in profile '{PROFILE}'\n({type(exc).__name__}: "
                          f"{str(exc)[:90]})")
    _glue(name, fig, display=False)


def placeholder(text: str) -> Figure:
    fig = Figure(figsize=(7, 1.6))
    ax = fig.add_subplot()   # an (invisible) axes: IPython does not render a figure without one
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color="0.35", transform=ax.transAxes)
    return fig


def paper(key: str):
    return PAPER[key]["value"]


def number(key: str):
    """A flat number from ``summary.json["numbers"]`` (None when absent)."""
    return (SUMMARY or {}).get("numbers", {}).get(key)


def row(key: str) -> dict:
    """A row of the claims table by id (an empty row when absent)."""
    for r in (SUMMARY or {}).get("rows", []):
        if r["id"] == key:
            return r
    return {"id": key, "verdict": NA, "reason": "", "evidence": "", "model": NA, "ours": None, "paper": None,
            "rules": [], "earlier": None, "scope": {}}


def verdict(key: str) -> str:
    """A row's verdict (the enum's value, e.g. "not reproduced"; n/a without a summary)."""
    return row(key)["verdict"]


# ------------------------------------------------------------------------------------------- verdicts, shown
SHORT = {"cifar10_clean_e100": "CIFAR-10 clean accuracy @100", "cifar10_fgsm_0.01_e100": "CIFAR-10 FGSM accuracy, ε = 0.01",
         "mnist_clean_e100": "MNIST clean accuracy @100", "mnist_fgsm_0.34_e100": "MNIST FGSM accuracy, ε = 0.34",
         "fgsm_stronger_on_complex_data": "FGSM stronger on CIFAR-10 than MNIST",
         "mnist_fraction_fragile_e10": "MNIST fragile share of conv1 @10",
         "mnist_attacking_S_e10": "MNIST images attacking S @10",
         "cifar10_fraction_fragile_e50": "CIFAR-10 fragile share of conv1 @50",
         "cifar10_attacking_S_e50": "CIFAR-10 images attacking S @50",
         "csg_cifar10": "CSG complexity, CIFAR-10 (cited)", "csg_mnist": "CSG complexity, MNIST (cited)",
         "csg_order": "CIFAR-10 more complex than MNIST", "accuracy_grows": "Accuracy grows with training",
         "targeting_grows_with_eps": "Share attacking S grows with ε", "late_model_balanced": "Late model more balanced",
         "filter_lowers_targeting": "Filter lowers the share attacking S",
         "filter_improves_robustness": "Filter improves robustness (eq 2)",
         "fragile_grows_with_depth": "More fragile kernels in deeper nets",
         "mean_drop_cifar_saturates": "Mean drop accuracy saturates (CIFAR-10)",
         "mean_drop_mnist_rises_falls": "Mean drop accuracy rises, falls (MNIST)",
         "beyond_filtered_pgd": "Filter's gain under PGD", "beyond_filtered_fgsm_transfer": "Filter's gain under transfer",
         "beyond_filtered_val_fgsm": "Filter's gain, S ranked on validation",
         "beyond_filtered_bn_fgsm": "Filter's gain, BatchNorm recomputed"}
CLAIMS_PAGE = "claims.html"      # the claims page, relative to another chapter page (all live in book/)


def verdict_badge(v: str) -> str:
    """A verdict as HTML: bold, coloured by its value (the only bold in the tables)."""
    return f'<span class="verdict {html.escape(str(v)).replace(" ", "-")}">{html.escape(str(v))}</span>'


def rule_links(r: dict, here: bool = False) -> str:
    """The rules a row cites, as links to where each is stated (the claims page's Rules section)."""
    base = "" if here else CLAIMS_PAGE
    return ", ".join(f'<a href="{base}#rule-{c["id"]}">{html.escape(c["id"])} v{c["version"]}</a>'
                     for c in r.get("rules") or [])


def ours_text(r: dict) -> str:
    """'34.40 [33.48, 35.34]', or '—' for a claim without a number."""
    if r.get("ours") is None:
        return "—"
    ci = r.get("ci")
    return f"{r['ours']:.2f}" + (f" {fsummary.fmt_ci(*ci)}" if ci else "")


def paper_text(r: dict) -> str:
    v = r.get("paper")
    if v is None or v == "—":
        return "—"
    return f"{v:g}" if isinstance(v, (int, float)) else html.escape(str(v))


def earlier_text(r: dict, here: bool = False) -> str:
    """'reproduced under number v1, the rule before it changed', for each rule of a row that changed after its
    data were seen and judges the row otherwise."""
    base = "" if here else CLAIMS_PAGE
    return "".join(f'<span class="earlier">{html.escape(e["verdict"])} under <a href="{base}#rule-{e["rule"]["id"]}">'
                   f'{e["rule"]["id"]} v{e["rule"]["version"]}</a>, the rule before it changed</span>'
                   for e in r.get("earlier") or [])


def seed0_text(r: dict) -> str:
    """'seed 0 alone: not reproduced', for a row judged over three seeds (rule seeds) that seed 0 alone judges
    otherwise."""
    s0 = r.get("seed0_verdict")
    if not s0 or s0 == r["verdict"]:
        return ""
    return f'<span class="earlier">seed 0 alone: {html.escape(s0)}</span>'


def evidence_html(r: dict) -> str:
    """A row's scope and evidence, folded (a click opens them)."""
    sc = r.get("scope") or {}
    scope = "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v))}" for k, v in sc.items() if v)
    ctrl = r.get("control") or {}
    parts = [f"<b>model</b>: {html.escape(str(r.get('model', '')))}", f"<b>scope</b>: {html.escape(scope or '—')}",
             f"<b>rule parameters</b>: {html.escape(str(r.get('rule') or '—'))}"]
    if ctrl:
        was = "".join(f"; {e['reading']} under {e['rule']['id']} v{e['rule']['version']}, the rule before it changed"
                      for e in ctrl.get("earlier") or [])
        parts.append("<b>norm control</b>: " + html.escape(f"{ctrl.get('reading', '')} ({ctrl['rule']['id']} "
                                                           f"v{ctrl['rule']['version']}{was}): ")
                     + html.escape(", ".join(f"{k} {v:g} %" for k, v in ctrl["shares"].items())))
    if r.get("across_seeds"):
        parts.append(f"<b>across seeds</b>: {html.escape(r['across_seeds'])}")
    # rule seeds (each seed's verdict) is the sensitivity entry 'seeds' below
    # rule schedule (the model trained on a schedule that ends at the row's epoch) is the sensitivity entry below
    for name, x in (r.get("sensitivity") or {}).items():      # the row's rule under other readings of its data
        text = x["text"] + (f"; {x['over_seeds']}" if x.get("over_seeds") else "")     # seed_margin over the seeds
        parts.append(f"<b>sensitivity, {html.escape(sensitivity.TITLES.get(name, name))}</b>: {html.escape(text)}")
    parts.append(f"<b>evidence</b>: {html.escape(str(r.get('evidence') or '—'))}")
    return '<details class="evidence"><summary>scope and evidence</summary>' + "<br>".join(parts) + "</details>"


def verdict_table(rows: list[dict], evidence: bool = False, here: bool = False) -> str:
    """The verdict table as HTML, one line per row: claim, paper, ours [interval], verdict (and the verdict
    of an earlier rule version beside it), one plain reason, the rules it cites; ``evidence``: scope and evidence
    folded under the reason."""
    out = ['<table class="verdicts"><thead><tr><th>claim</th><th>paper</th><th>ours [interval]</th>'
           '<th>verdict</th><th>why</th></tr></thead><tbody>']
    for r in rows:
        why = (html.escape(r.get("reason") or "")
               + (f'<details class="evidence"><summary>the other runs</summary>{html.escape(r["detail"])}</details>'
                  if r.get("detail") else "")
               + (f' <span class="earlier">rules: {rule_links(r, here)}</span>' if evidence else ""))
        out.append(f'<tr><td>{html.escape(SHORT.get(r["id"], r.get("item", r["id"])))}</td>'
                   f'<td class="num">{paper_text(r)}</td><td class="num">{ours_text(r)}</td>'
                   f'<td>{verdict_badge(r["verdict"])}{earlier_text(r, here)}{seed0_text(r)}</td>'
                   f'<td>{why}{evidence_html(r) if evidence else ""}</td></tr>')
    out.append("</tbody></table>")
    kinds = {r.get("kind") for r in rows}
    note = ([] if "number" not in kinds and "claim" not in kinds else
            ["for the paper's numbers, Wilson intervals at the family-wise 95 % level (rule <em>number</em>)"]
            + (["for the CSG values, 95 % t intervals over draws"] if any(r["id"].startswith("csg_") for r in rows)
               else [])
            + (["for eq 2, the 95 % interval of the paired gain in points"]
               if any(r["id"] == "filter_improves_robustness" for r in rows) else []))
    note += (["the filtered model's accuracy with its 95 % Wilson interval over the robustness step's test images, "
              "the gain over its baseline in the reason"] if "beyond" in kinds else [])
    out.append('<p class="table-note">' + (f'Intervals: {"; ".join(note)}. ' if note else "")
               + ('A grey line under a verdict gives the verdict of an earlier version of its rule, where the rule '
                  'changed after its data had been seen, or of seed 0 alone, where the row is judged over seeds.'
                  if any(earlier_text(r) + seed0_text(r) for r in rows) else "") + '</p>')
    return "".join(out)


def show_evidence(key: str, title: str = "evidence") -> None:
    """A row's evidence under a chapter's sentence, folded."""
    r = row(key)
    display(HTML(f'<details class="evidence"><summary>{html.escape(title)}: {html.escape(SHORT.get(key, key))}'
                 f'</summary>{html.escape(str(r.get("evidence") or NA))}</details>'))


# ------------------------------------------------------------------------------------------------ reading
def read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if Path(path).is_file() else None


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


at = fsummary.value_at   # the value of a column at one ε, rows filtered (None when absent)


def epochs() -> list[int]:
    if PROFILE_SPEC is not None:
        return list(PROFILE_SPEC.epochs)
    return sorted({e for d in DATASETS for e in plots.epochs_in(run_dir(d))})


def landed(dataset: str, arch: str | None = None) -> list[int]:
    """The profile's checkpoint epochs whose results have landed for a run (its ``attack.csv`` exists)."""
    return [e for e in epochs() if (epoch_dir(dataset, e, arch) / "attack.csv").exists()]


def epochs_text(dataset: str, arch: str | None = None) -> str | None:
    """'10, 50 (100 pending)': the landed checkpoint epochs of a run, naming those still to come."""
    done, todo = landed(dataset, arch), [e for e in epochs() if e not in landed(dataset, arch)]
    if not done:
        return None
    return ", ".join(map(str, done)) + (f" ({', '.join(map(str, todo))} pending)" if todo else "")


pct = fsummary.pct      # 99.99, not 100.0, for 9,999 of 10,000 images


def no_results_note(what: str) -> None:
    display(Markdown(f":::{{note}}\nNo {what} in `results/{PROFILE}/` yet.\n:::"))


def not_run_note(what: str, setting: str, why: str) -> None:
    """Say that this profile never runs ``what`` (``setting`` unset), why, and where to see it instead."""
    display(Markdown(f":::{{note}}\nThe {PROFILE} profile does not run {what} (`{setting}` unset): {why} "
                     "Build the book with `FNLIB_PROFILE=quick` to see it.\n:::"))
