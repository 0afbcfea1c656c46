"""Where the report's figures sit and what their captions say, the report's stage sections, and run ids as links.

Figures are named as ``entrypoints/report.py`` stores them, ``{step}_{file}``; each sits beside the stage it
informs (``PLACES``: a stage of ``report.stage_rows``, or one of the report's tables), and a figure with no place or
whose place is not shown goes to a last "Other figures" section, so none is lost.
"""
import base64
import html
import io
import re
from urllib.parse import urlsplit

import pandas as pd

from .redact import redact

FOREST = "answer_paired_differences.png"  # the forest plot the report opens with
TOP, PEERS_TABLE, CEILING_TABLE = "top", "peers table", "ceiling table"

PLACES = {  # figure -> (where it sits, its caption)
    FOREST: (TOP, "The answer at a glance: the distilled student's test R^2 of log g minus each other reader's, "
                  "paired on the same test spectra, with its 95 % interval as a bar. Right of the zero line the "
                  "student reads more log g; a bar across zero is a tie. Hollow markers: readers that see sigma, "
                  "which the student does not."),
    "fisher_crb_log_g.png": (CEILING_TABLE, "The Cramer-Rao bound on log g of each test spectrum across the "
                                            "(T_eff, log g) plane, and its distribution: where the noisy flux holds "
                                            "log g information and where it holds little."),
    "fisher_ceiling_vs_noise.png": (CEILING_TABLE, "The information ceiling on the R^2 of log g against the noise "
                                                   "level: the most any reader of the noisy flux can reach."),
    "probe_grid_grid_ridge.png": ("1.1 / 1.4", "Test R^2 of log g read from the teacher latent with Ridge, for "
                                               "every layer x pooling of the grid (Stage 1 takes the cell best on "
                                               "validation)."),
    "decompose_error_a3_a4_residual_r2.png": ("A", "Test R^2 of the residual r (log g minus what the error alone "
                                                   "predicts) read from each input and head; hatched inputs see "
                                                   "sigma; the dashed line is the bar for real extra information."),
    "noise_sweep_noise_sweep.png": ("1.2", "Test R^2 of log g against the test noise level, every head trained at "
                                           "the training level: the teacher latent (1.2), the student (3.2) and raw "
                                           "flux, with the controls that see sigma and the information ceiling."),
    "student_training_curves.png": ("2.1", "The student's training: loss per epoch on training (fresh noise) and "
                                           "validation (fixed noise), and the validation cosine to the teacher "
                                           "latent against the 2.1 bar."),
    "student_stage_3_1_per_bin_ridge.png": ("3.1", "Test MAE of log g per log g and T_eff bin for the student and "
                                                   "each baseline, all with a Ridge head (3.1)."),
    "student_log_g_pred_vs_true.png": ("3.1", "The student's predicted against true log g on the test spectra, with "
                                              "the residuals and the information ceiling's rms error."),
    "sample_efficiency_sample_efficiency.png": ("3.3", "Test R^2 of log g against the number of labelled training "
                                                       "spectra, each reader with its 95 % band (3.3)."),
    "shuffle_labels_shuffle_labels_null.png": ("4.3", "The leakage guard: the test correlation with the test log g "
                                                      "of each head trained on shuffled labels (the null values, "
                                                      "about 0 when nothing leaks), their mean, which the guard "
                                                      "t-tests against 0, and the observed value of the head "
                                                      "trained on the true labels."),
    "peer_template_fit_crb_ratio_log_g.png": (PEERS_TABLE, "The template fit's squared error over the Cramer-Rao "
                                                           "bound in bins: 1 is an efficient estimator, below 1 one "
                                                           "helped by the prior or the label box."),
}

HEADINGS = {  # the stage a group of rows opens with -> its heading
    "ceiling": "The information ceiling", "1.1 / 1.4": "Stage 1: log g in the teacher latent",
    "A": "Stage A: the error shortcut", "1.2": "1.2: the latent under more noise",
    "2.1": "Stage 2: the student imitates the teacher", "3.1": "Stage 3: the student against the baselines",
    "3.2": "3.2: the student under more noise", "3.3": "3.3: few labels",
    "4.1": "Stage 4: ablations and the leakage guard"}


class Placed:
    """The figures not yet shown: ``take`` those placed at some places, ``rest`` the others (with their captions)."""

    def __init__(self, figures: dict):
        self.figures, self.left = figures, list(figures)

    def take(self, *places) -> list:
        out = [(name, PLACES[name][1]) for name in self.left if PLACES.get(name, (None,))[0] in places]
        self.left = [name for name in self.left if name not in dict(out)]
        return out

    def rest(self) -> list:
        out, self.left = [(name, PLACES.get(name, (None, name))[1]) for name in self.left], []
        return out


def groups(rows: list) -> list:
    """[(heading, rows)]: the rows in order, a new group at each stage of ``HEADINGS``."""
    out = []
    for row in rows:
        if row.stage in HEADINGS or not out:
            out.append((HEADINGS.get(row.stage, "Stages"), []))
        out[-1][1].append(row)
    return out


def server(uri: str) -> str | None:
    """The tracking server's address without credentials (user, password, query), or None for a store that is no
    http(s) server."""
    parts = urlsplit(str(uri or ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return redact(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}")


def run_links(summaries, uri: str) -> dict:
    """{run id: its page on the tracking server} of run summaries carrying ``experiment_id``; {} without a server."""
    base = server(uri)
    return {} if base is None else {s["run_id"]: f"{base}/#/experiments/{s['experiment_id']}/runs/{s['run_id']}"
                                    for s in summaries if s and s.get("experiment_id") is not None}


def md_link(text: str, run_id: str, links: dict) -> str:
    return f"[{text}]({links[run_id]})" if run_id in links else text


def linked_title(title: str, links: dict, link) -> str:
    """``title`` with each whole run id of ``links`` in it as a link (``link``: ``md_link`` or ``html_link``)."""
    return re.sub(r"\b[0-9a-f]{32}\b", lambda m: link(m.group(), m.group(), links), title)


def html_link(text: str, run_id: str, links: dict) -> str:
    """``text`` (already escaped) as a link to the run's page."""
    return f"<a href='{html.escape(links[run_id], quote=True)}'>{text}</a>" if run_id in links else text


def _frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame([r.__dict__ for r in rows]).rename(columns={"run_id": "run"})


def md_rows(rows: list, links: dict) -> str:
    table = _frame(rows)
    table["run"] = [md_link(r, r, links) for r in table["run"]]
    return table.to_markdown(index=False, disable_numparse=True)  # stage "3.10" stays text


def html_rows(rows: list, links: dict) -> str:
    table = _frame(rows).astype(str).map(html.escape)
    table["run"] = [html_link(escaped, row.run_id, links) for escaped, row in zip(table["run"], rows)]
    return table.to_html(index=False, escape=False)


def md_figures(items: list) -> list:
    return [line for name, caption in items for line in (f"![{caption}](figures/{name})", "", f"*{caption}*", "")]


def html_figures(items: list, figures: dict) -> str:
    return "".join(f"<figure><img alt='{html.escape(caption, quote=True)}' src='data:image/png;base64,"
                   f"{base64.b64encode(figures[name]).decode()}'><figcaption>{html.escape(caption)}</figcaption>"
                   "</figure>" for name, caption in items)


def md_stages(rows: list, placed: Placed, links: dict) -> list:
    """The stages as sections: each group's rows, then the figures placed at its stages."""
    out = []
    for heading, part in groups(rows):
        out += [f"### {heading}", "", md_rows(part, links), ""] + md_figures(placed.take(*(r.stage for r in part)))
    return out


def html_stages(rows: list, placed: Placed, links: dict) -> str:
    return "".join(f"<h3>{html.escape(heading)}</h3>{html_rows(part, links)}"
                   + html_figures(placed.take(*(r.stage for r in part)), placed.figures)
                   for heading, part in groups(rows))


def png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def forest_png(table: pd.DataFrame) -> bytes | None:
    """The forest plot of ``report.forest_table`` as PNG bytes, None when no reader was compared."""
    if table.empty:
        return None
    from .figures import paired_differences

    return png(paired_differences(table))
