"""CLI commands of site self-adaptation (issue 31): ``reid-app adapt`` and ``reid-app models`` (list, use,
rollback)."""

from __future__ import annotations

import threading

import click

from reid_app.cli_helpers import DB_ID, command_settings, open_command_db
from reid_app.console import stderr_console, stdout_console

_DB_HELP = "Database file [default: reid.db in your user data folder, or $REID_APP_DB]."


def _defaults():
    from pipelines.adaptation.options import AdaptOptions

    return AdaptOptions()


def _print(text: str) -> None:
    stdout_console().print(text, markup=False, highlight=False, soft_wrap=True)


class _RichAdaptProgress:
    """``pipelines.adaptation.adapt.AdaptProgress`` as one rich progress bar per stage."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def stage(self, text, total=None):
        if self.task is not None:  # left as it ended: training cut short by the budget shows how far it got
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(text, total=total, note="")

    def advance(self, done, fields=None):
        from pipelines.adaptation.options import progress_note

        total = (fields or {}).get("total")
        self.progress.update(
            self.task, completed=done, note=progress_note(fields), **({"total": total} if total else {})
        )

    def message(self, text):
        self.progress.console.print(f"reid-app: {text}", markup=False, highlight=False, soft_wrap=True)


def _check_line(label: str, check) -> str:
    if check is None or not check.measured:
        return f"{label}: nothing held out to measure"
    parts = []
    if check.confirmed:
        parts.append(
            f"{check.confirmed} confirmed pairs: mean rank {check.confirmed_mean_rank:.2f}, "
            f"rank-1 {100 * check.confirmed_rank1:.0f}%"
        )
    if check.negatives:
        parts.append(
            f"{check.negatives} negative pairs: {100 * check.negative_first_match:.1f}% taken as first match, "
            f"mean cosine {check.negative_mean_cosine:.3f}"
        )
    return f"{label}: " + "; ".join(parts)


def _watchlist_lines(made, model_id) -> None:
    for line in made.watchlist_lost:
        _print(f"{line} could not be carried over to model {model_id}: add it to the watchlist again")


@click.command()
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.option(
    "--minutes",
    type=click.FloatRange(0.1, 24 * 60),
    default=_defaults().minutes,
    show_default=True,
    help="Time budget of the adaptation (re-encoding the site afterwards is not counted).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted adaptation (same database and settings).")
@click.option(
    "--iterations",
    type=click.IntRange(1, 100000),
    default=_defaults().iterations,
    show_default=True,
    help="Training batches at most (fewer when the time budget ends first).",
)
@click.option(
    "--samples",
    type=click.IntRange(2, 64),
    default=_defaults().samples,
    show_default=True,
    help="Sightings per tracklet cut from the footage and trained on.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 1.0),
    default=_defaults().threshold,
    show_default=True,
    help="Lowest cosine similarity at which two cameras' tracklets are taken as one person.",
)
@click.option(
    "--no-switch",
    is_flag=True,
    help="Register the adapted version but keep the current model ('reid-app models use' switches later).",
)
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: the settings' device].")
def adapt(db_path, minutes, resume, iterations, samples, threshold, no_switch, device) -> None:
    """Fine-tune the site's re-id model on its own footage, without labels.

    Every track is a class of its camera's classifier, tracks seen at once on one camera are two people, confident
    matches across cameras and every confirmed pair are one person, rejected pairs are two; distillation from the
    starting model keeps it from drifting (Li, Zhu, Gong: tracklet association, ECCV 2018 / TPAMI 2019). Crops are
    cut again from the source videos at the stored boxes.

    The result is a new model version beside the database. It is checked on pairs held out from training (half of
    the investigators' verdicts, a quarter of the pairs the site rules out) and becomes current only when that
    check is no worse than the starting model's: then every sighting is re-encoded (resumable) and the identities
    are re-clustered, keeping every verdict. 'reid-app models' lists the versions; 'reid-app models rollback'
    goes back. Ctrl-C stops; --resume continues.
    """
    from dataclasses import replace

    from models.encoders import resolve_device
    from pipelines.adaptation.adapt import adapt_site

    options = replace(
        _defaults(),
        minutes=minutes,
        iterations=iterations,
        samples=samples,
        threshold=threshold,
        device=resolve_device(device or command_settings().device),
    )
    db = open_command_db(db_path)
    console = stderr_console()
    stopping = threading.Event()
    try:
        with _RichAdaptProgress(console) as progress:
            try:
                report = adapt_site(db, options, progress, stopping.is_set, resume, not no_switch)
            except KeyboardInterrupt:
                stopping.set()
                console.print("reid-app: stopped; 'reid-app adapt --resume' continues", markup=False)
                return
    finally:
        db.close()
    if report.stopped:
        _print("stopped; 'reid-app adapt --resume' continues")
        return
    _print(
        f"adapted model {report.start_model} on {report.tracklets} tracklets of {report.cameras} cameras "
        f"({report.images} crops; {100 * report.association_rate:.0f}% associated across cameras, "
        f"{report.confirmed_used} confirmed pairs used); {report.iterations} batches in {report.training_seconds:.0f} s"
    )
    _print(_check_line("check before", report.before))
    _print(_check_line("check after ", report.after))
    _print(f"new version: model {report.version_model} ({report.files[0] if report.files else ''})")
    if report.made_current is not None and report.made_current.switch is not None:
        switch = report.made_current
        encoded = switch.reencode.encoded if switch.reencode else 0
        clustering = switch.clustering
        _print(
            f"model {report.version_model} is now current: {encoded} sightings re-encoded, {switch.switch.tracks} "
            f"track descriptors rebuilt, {clustering.identities if clustering else 0} identities "
            f"('reid-app models rollback' goes back)"
        )
        _watchlist_lines(switch, report.version_model)
    else:
        _print(f"model {report.version_model} was not made current: {report.not_current_because}")
    _print(f"done in {report.seconds / 60:.1f} min")


@click.group(invoke_without_command=True)
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.pass_context
def models(ctx, db_path) -> None:
    """The database's re-id model versions: which is current, what adaptation measured for each.

    Without a subcommand, lists them.
    """
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    if ctx.invoked_subcommand is None:
        _list_versions(db_path)


def _list_versions(db_path) -> None:
    from rich.table import Table

    from pipelines.adaptation.versions import list_versions

    db = open_command_db(db_path)
    try:
        versions = list_versions(db)
    finally:
        db.close()
    table = Table(show_lines=False)
    for column in ("id", "name", "current", "embeddings", "adapted from", "created (UTC)", "check (held out)", "state"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "created (UTC)"))
    for v in versions:
        after = v.info.get("check_after") or {}
        before = v.info.get("check_before") or {}
        check = ""
        if after:
            pieces = []
            if after.get("confirmed"):
                pieces.append(f"rank {before.get('confirmed_mean_rank'):.2f}->{after.get('confirmed_mean_rank'):.2f}")
            if after.get("negatives"):
                pieces.append(
                    f"false first {100 * before.get('negative_first_match'):.1f}%->"
                    f"{100 * after.get('negative_first_match'):.1f}%"
                )
            check = ", ".join(pieces) or "nothing held out"
        table.add_row(
            str(v.id),
            v.name + ("" if v.exists else " (file missing)"),
            "yes" if v.current else "",
            str(v.embeddings),
            str(v.info.get("adapted_from", "")),
            str(v.info.get("created", ""))[:16].replace("T", " "),
            check,
            str(v.info.get("state", "")),
        )
    stdout_console().print(table)


def _switch(db_path, model_id: int, what: str) -> None:
    from pipelines.adaptation.versions import make_current

    db = open_command_db(db_path)
    console = stderr_console()
    try:
        with _RichAdaptProgress(console) as progress:
            progress.stage(f"re-encoding the site's sightings with model {model_id}")
            try:
                report = make_current(
                    db,
                    model_id,
                    progress=lambda done, total: progress.advance(done, {"total": total}),
                    device=command_settings().device,
                )
            except KeyboardInterrupt:
                console.print("reid-app: stopped; run the same command again to continue", markup=False)
                return
    finally:
        db.close()
    if report.switch is None and report.reencode is not None:
        _print("stopped; run the same command again to continue")
        return
    encoded = report.reencode.encoded if report.reencode else 0
    if report.switch is None:
        _print(f"model {model_id} is already current")
        return
    _print(
        f"{what}: model {model_id} is now current (was {report.switch.previous}); {encoded} sightings encoded, "
        f"{report.switch.tracks} track descriptors rebuilt, "
        f"{report.clustering.identities if report.clustering else 0} identities"
    )
    _watchlist_lines(report, model_id)


@models.command("use")
@click.argument("model_id", type=DB_ID)
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.pass_context
def use_command(ctx, model_id, db_path) -> None:
    """Make MODEL_ID the current model: encode the sightings it lacks (resumable), then switch and re-cluster the
    identities, keeping every verdict."""
    _switch(db_path or ctx.obj.get("db_path"), model_id, "switched")


@models.command("rollback")
@click.option("--db", "db_path", metavar="PATH", help=_DB_HELP)
@click.pass_context
def rollback_command(ctx, db_path) -> None:
    """Go back to the model the current one replaced."""
    from pipelines.adaptation.versions import rollback_target

    path = db_path or ctx.obj.get("db_path")
    db = open_command_db(path)
    try:
        target = rollback_target(db)
    finally:
        db.close()
    _switch(path, target, "rolled back")


ADAPT_COMMANDS = (adapt, models)
