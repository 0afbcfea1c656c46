"""Each step's wall time of a finished `main` run, grouped by kind, beside the whole run's.

    python bench/step_times.py                       # the newest FINISHED main run in MLFLOW_TRACKING_URI
    python bench/step_times.py --run-id <main run id>

A step reused from an earlier run counts that run's time (what the step cost when it ran); the total is the main
run's own wall time. Used for the confirm run's benchmark (docs/confirm.md): run `main -P scale=confirm` under
`/usr/bin/time -v` for its peak memory, then this script for the steps.
"""
import re

import click
import pandas as pd

from distill import tracking


def step_table(main_run) -> pd.DataFrame:
    rows = []
    for tag, run_id in main_run.data.tags.items():
        if not tag.startswith("step_"):
            continue
        info = tracking.get_run(run_id).info
        name = tag[len("step_"):]
        kind = re.sub(r"_s\d+$", "", name)  # a seed's step counts with its arm
        rows.append(dict(step=name, kind=kind, status=info.status,
                         seconds=((info.end_time or info.start_time) - info.start_time) / 1000))
    return pd.DataFrame(rows).sort_values("seconds", ascending=False)


@click.command()
@click.option("--run-id", default="latest", show_default=True, help="a main run id, or latest")
def main(run_id):
    run = (tracking.find_run("main") if run_id == "latest" else tracking.get_run(run_id))
    if run is None:
        raise click.ClickException("no FINISHED main run in this tracking store")
    table = step_table(run)
    by_kind = table.groupby("kind")["seconds"].agg(["count", "sum", "max"]).sort_values("sum", ascending=False)
    wall = (run.info.end_time - run.info.start_time) / 1000
    click.echo(by_kind.to_string(float_format="%.0f"))
    click.echo(f"\nmain run {run.info.run_id} ({run.data.tags.get('scale', '?')} scale): {wall / 60:.1f} min wall, "
               f"{table['seconds'].sum() / 60:.1f} min in {len(table)} steps")


if __name__ == "__main__":
    main()
