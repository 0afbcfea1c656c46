"""The report's seeded section: the pre-registration's digest, each arm's seed-mean R^2 and each question's paired
difference with its two-level interval, read from the main run's ``tables/seeded*.json`` and tags."""
import html

import pandas as pd


def _ci(value, lo, hi, signed=False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(value)} [{f.format(lo)}, {f.format(hi)}]"


def tables(questions: pd.DataFrame, arms: pd.DataFrame) -> tuple:
    """(arms, questions) as display frames: intervals as text, seed sd and seed count beside them."""
    shown_arms = pd.DataFrame({"arm": arms["arm"], "spectra": arms["dataset"].map(
        {"leak": "sigma leaks the flux", "leak_free": "leak-free sigma"}), "seeds": arms["seeds"],
        "test R^2 (seed mean, 95 %)": [_ci(*r) for r in arms[["r2", "lo", "hi"]].to_numpy()],
        "seed sd": arms["seed_sd"].map("{:.3f}".format)})
    shown_questions = pd.DataFrame({"question": questions["question"], "claim": questions["claim"],
                                    "difference (95 %)": [_ci(*r, signed=True) for r in
                                                          questions[["value", "lo", "hi"]].to_numpy()],
                                    "seed sd": questions["seed_sd"].map("{:.3f}".format),
                                    "seeds": questions["seeds"], "verdict": questions["verdict"]})
    return shown_arms, shown_questions


def heading(tags: dict) -> str:
    digest = tags.get("preregistration_digest")
    if digest:
        return (f"Pre-registered confirm run: configs/confirm.yaml digest {digest}, data seed {tags.get('data_seed')}"
                "; every choice read validation and the test split was sealed for this run.")
    return "Seeded arms (exploratory: this scale's spectra were seen during development)."


def markdown(tags: dict, questions: pd.DataFrame, arms: pd.DataFrame) -> str:
    shown_arms, shown_questions = tables(questions, arms)
    return "\n\n".join(["## Seeded answer", heading(tags), tags.get("seeded_answer", ""),
                        "Intervals: two-level bootstrap (training seeds, then test spectra); verdicts from the lower "
                        "bound for an \"at least\" claim, the upper bound for \"less than\".",
                        shown_questions.to_markdown(index=False), shown_arms.to_markdown(index=False)]) + "\n\n"


def html_section(tags: dict, questions: pd.DataFrame, arms: pd.DataFrame) -> str:
    shown_arms, shown_questions = tables(questions, arms)
    return (f"<h2>Seeded answer</h2><p>{html.escape(heading(tags))}</p>"
            f"<p>{html.escape(tags.get('seeded_answer', ''))}</p>"
            + shown_questions.to_html(index=False) + shown_arms.to_html(index=False))


def load(run) -> tuple | None:
    """(questions, arms) of a main run that ran seeded arms, else None."""
    import mlflow

    names = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "tables")}
    if "tables/seeded.json" not in names:
        return None
    return tuple(mlflow.load_table(f"tables/{n}.json", run_ids=[run.info.run_id]) for n in ("seeded", "seeded_arms"))


STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:.3em .5em;font-size:.9em}")


def compose(title: str, md: str, page: str, tags: dict, questions: pd.DataFrame, arms: pd.DataFrame) -> tuple:
    """(markdown, html) with the seeded section first; a confirm run's report is that section alone (it runs no
    other stage)."""
    section, section_html = markdown(tags, questions, arms), html_section(tags, questions, arms)
    if tags.get("scale") == "confirm":
        return (f"# {title}\n\n{section}", f"<!doctype html><html><head><meta charset='utf-8'><title>"
                f"{html.escape(title)}</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
                f"{section_html}</body></html>")
    head, _, rest = md.partition("\n\n")
    top, _, body = page.partition("</h1>")
    return f"{head}\n\n{section}{rest}", f"{top}</h1>{section_html}{body}"
