"""The HTML case report of an evidence export: one self-contained page (inline CSS and SVG, images by relative
path) that any browser opens from the export folder."""

from __future__ import annotations

from html import escape
from pathlib import Path

from common.timefmt import format_time

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f0f0f0; text-align: left; } .facts td:first-child { font-weight: bold; }
.thumbs figure { display: inline-block; margin: 2px; text-align: center; }
.thumbs img { height: 160px; border: 1px solid #999; display: block; }
.thumbs figcaption { font-size: 0.7em; max-width: 120px; }
svg.timeline { border: 1px solid #ccc; background: #fafafa; }
.warning { border: 2px solid #d9480f; background: #fff4e6; padding: 0.6em 1em; font-weight: bold; }
.suggested { color: #d9480f; } .confirmed { color: #2b8a3e; }
"""


def _when(record: dict, key: str) -> str:
    local = record.get(f"{key}_local")
    if local:
        return f"{local} (UTC {record[key]})"
    return f"time unknown ({record[f'{key}_s_in_video']:.1f} s into the video)"


def _link(track: dict) -> tuple[str, str]:
    """``(css class, words)`` of how a track is linked to the identity."""
    kind = track.get("link", "suggested")
    if kind == "reference":
        return "confirmed", "reference track"
    if kind == "confirmed":
        return "confirmed", "confirmed by an investigator"
    match = track.get("match")
    score = f" (similarity {match['similarity']:.2f})" if match and "similarity" in match else ""
    return "suggested", f"machine suggestion{score}, not confirmed"


def _why(match: dict | None) -> str:
    """The "why linked" cell: ``"0.83 to track 12: upper body 0.91, legs 0.62, head not visible"``."""
    if not match:
        return "no re-id descriptor"
    if match.get("reference"):
        return "reference track (most sightings)"
    text = f"{match['similarity']:.2f} to track {match['reference_track']}"
    return f"{text}: {match['explanation']}" if match.get("explanation") else text


def _tick_label(record: dict, offset_s: float, tenths: bool = False) -> str:
    """A time-axis label ``offset_s`` after the timeline's start: local clock time, or seconds into the video;
    ``tenths``: to a tenth of a second (a span of a few seconds would repeat whole seconds)."""
    if record.get("start_local"):
        text = format_time(record["start_timestamp"] + offset_s)  # never raises, even on an absurd stored time
        return text[11 : 21 if tenths else 19] if len(text) >= 21 and text[4] == "-" else text
    return f"{record['start_s_in_video'] + offset_s:.{1 if tenths else 0}f} s"


def _timeline(
    tracks: list[dict], start: float, end: float, first: dict, width: int = 900, height: int = 28, ticks: int = 6
) -> str:
    """One camera's tracks as bars on the identity's whole time span, with a labelled time axis below (``first``:
    the record of the identity's earliest track, whose start is the axis's origin)."""
    span = max(end - start, 1e-3)
    bars = []
    for t in tracks:
        x = (t["start_timestamp"] - start) / span * width
        w = max(2.0, (t["end_timestamp"] - t["start_timestamp"]) / span * width)
        bars.append(
            f'<rect x="{x:.1f}" y="4" width="{w:.1f}" height="{height - 8}" fill="#d9480f">'
            f"<title>track {t['track_id']}</title></rect>"
        )
    axis = []
    for i in range(ticks):
        x = i / (ticks - 1) * width
        anchor = "start" if i == 0 else "end" if i == ticks - 1 else "middle"
        axis.append(
            f'<line x1="{x:.1f}" y1="{height}" x2="{x:.1f}" y2="{height + 5}" stroke="#666"/>'
            f'<text x="{x:.1f}" y="{height + 17}" font-size="11" text-anchor="{anchor}">'
            f"{escape(_tick_label(first, i / (ticks - 1) * span, span < 2 * ticks))}</text>"
        )
    total = height + 22
    return (
        f'<svg class="timeline" width="{width}" height="{total}" viewBox="0 0 {width} {total}" '
        f'role="img" aria-label="when this camera saw the person">{"".join(bars)}{"".join(axis)}</svg>'
    )


def write_case_report(path: Path, summary: dict) -> Path:
    """Write the case report of an export ``summary`` (the dict of ``identity-<ID>.json``) to ``path``.

    Returns:
        ``path``.
    """
    tracks = [t for c in summary["cameras"] for t in c["tracks"]]
    first = min(tracks, key=lambda t: t["start_timestamp"])
    start = first["start_timestamp"]
    end = max(t["end_timestamp"] for t in tracks)
    model = summary["model"]
    facts = [
        ("Identity", summary["identity"]),
        ("Name", summary.get("label") or "(not named)"),
        ("Note", summary.get("note") or ""),
        ("Confidence", summary["confidence"]),
        ("Cameras", len(summary["cameras"])),
        ("Tracks", len(tracks)),
        ("Re-id model", f"{model['name']} (SHA-256 {model['checkpoint_hash']})"),
        ("Database", summary["database"]),
        ("Exported", summary["exported_at"]),
        ("reid-app", summary["reid_app_version"]),
        ("Time zone of local times", summary["time_zone"]),
        (
            "Bystanders",
            ("blurred in crops and clips: " + summary["redaction"]["method"])
            if summary.get("redaction", {}).get("bystanders_blurred")
            else "not blurred: the source pixels (exported with --no-redact)",
        ),
    ]
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Identity {summary['identity']}"
        f" - reid-app case report</title><style>{_STYLE}</style></head><body>",
        f"<h1>Identity {summary['identity']}{escape(' (' + summary['label'] + ')') if summary.get('label') else ''}"
        + (
            f": where and when these tracks were seen ({summary['links']['suggested']} of {len(tracks)} linked "
            f"by the machine's suggestion only)</h1>"
            if summary.get("unconfirmed_warning")
            else ": where and when this person was seen</h1>"
        ),
        (
            f"<p class='warning'>{escape(summary['unconfirmed_warning'])}.</p>"
            if summary.get("unconfirmed_warning")
            else "<p>Every track of this identity is linked by an investigator's confirmation.</p>"
            if len(tracks) > 1
            else ""
        ),
        "<table class='facts'>"
        + "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in facts)
        + "</table>",
        "<p>Hashes of the source videos and of every file of this export: <a href='manifest.json'>"
        "manifest.json</a>.</p>",
    ]
    for camera in summary["cameras"]:
        parts.append(f"<h2 id='camera-{escape(camera['camera'])}'>Camera {escape(camera['camera'])}</h2>")
        parts.append(_timeline(camera["tracks"], start, end, first))
        parts.append(
            "<table><tr><th>track</th><th>local id</th><th>from</th><th>to</th><th>sightings</th>"
            "<th>video</th><th>clip</th><th>link</th><th>why linked (similarity to the reference track, "
            "by body part)</th></tr>"
        )
        for t in camera["tracks"]:
            clip = f"<a href='{escape(t['clip'])}'>clip</a>" if t.get("clip") else ""
            link_class, link_words = _link(t)
            parts.append(
                f"<tr><td>{t['track_id']}</td><td>{t['local_track_id']}</td><td>{escape(_when(t, 'start'))}"
                f"</td><td>{escape(_when(t, 'end'))}</td><td>{t['sightings']}</td>"
                f"<td>{escape(Path(t['video']).name)}</td><td>{clip}</td>"
                f"<td class='{link_class}'>{escape(link_words)}</td>"
                f"<td>{escape(_why(t.get('match')))}</td></tr>"
            )
        parts.append("</table><div class='thumbs'>")
        for t in camera["tracks"]:
            captions = t.get("thumbnail_captions") or [f"track {t['track_id']}"] * len(t["thumbnails"])
            parts += [
                f"<figure><img src='{escape(p)}' alt='{escape(c)}' title='{escape(c)}'>"
                f"<figcaption>{escape(c)}</figcaption></figure>"
                for p, c in zip(t["thumbnails"], captions)
            ]
        parts.append("</div>")
    if summary.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in summary["notes"]) + "</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
