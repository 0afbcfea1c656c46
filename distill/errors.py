"""The one exception type users see: a one-line message that says what is wrong and what to do."""


class DistillError(Exception):
    """Bad input or an impossible request; entry points print it as one line and exit 2."""


def check_choices(name: str, values: list, valid):
    """One line naming the unknown (or missing) values of a comma-list option and the valid ones."""
    bad = [v for v in values if v not in valid]
    if bad or not values:
        what = f"unknown {name} {bad[0]!r}" if len(bad) == 1 else f"unknown {name} {bad}" if bad else f"no {name} given"
        raise DistillError(f"{what}; valid: {', '.join(valid)}")
