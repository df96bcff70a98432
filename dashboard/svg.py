"""The dashboard's plots as plain geometry: pure functions from rows to SVG shapes (no Django, no I/O).

Each function returns a ``Plot``: a width, a height and a list of ``Shape`` (tag, attributes, text, a
tooltip). ``dashboard/_plot.html`` writes them out with Django's autoescaping, so no value reaches the
page unescaped. Colours are CSS classes (``grade-3``, ``visit-missed``…) from ``dashboard.css``: no
inline style, nothing for a Content-Security-Policy to refuse.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

WIDTH = 1180
MARGIN_LEFT = 150
MARGIN_RIGHT = 20
LANE = 26
AXIS = 34


@dataclass(frozen=True)
class Shape:
    tag: str  # rect | circle | line | polyline | polygon | text | path
    attrs: tuple[tuple[str, str], ...]
    text: str = ""
    title: str = ""


@dataclass
class Plot:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    label: str = ""

    def add(self, tag: str, *, text: str = "", title: str = "", **attrs) -> None:
        self.shapes.append(Shape(tag, tuple((k.rstrip("_").replace("_", "-"), _fmt(v)) for k, v in attrs.items()),
                                 text, title))  # fmt: skip


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def date_scale(start: date, end: date, x0: float, x1: float) -> Callable[[date], float]:
    """Day → x, with ``end`` included (a day is as wide as one step)."""
    days = max((end - start).days + 1, 1)
    step = (x1 - x0) / days

    def x(day: date) -> float:
        return x0 + (day - start).days * step

    return x


def day_width(start: date, end: date, x0: float, x1: float) -> float:
    return (x1 - x0) / max((end - start).days + 1, 1)


def date_ticks(start: date, end: date, *, most: int = 10) -> list[date]:
    """Round dates to label an axis: every 1, 2 or 7 days, or the first of each month or quarter."""
    days = (end - start).days + 1
    for step in (1, 2, 7, 14):
        if days / step <= most:
            first = start if step < 7 else start + timedelta(days=(7 - start.weekday()) % 7)
            return [first + timedelta(days=n * step) for n in range(0, days // step + 1) if first + timedelta(
                days=n * step) <= end]  # fmt: skip
    months = 1 if days <= 31 * most else 3
    ticks, year, month = [], start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        tick = date(year, month, 1)
        if tick > end:
            return ticks
        if (month - 1) % months == 0:
            ticks.append(tick)


def span(dates: Iterable[date | None], *, pad: int = 2) -> tuple[date, date]:
    known = [d for d in dates if d is not None]
    if not known:
        today = date.today()
        return today - timedelta(days=pad), today + timedelta(days=pad)
    return min(known) - timedelta(days=pad), max(known) + timedelta(days=pad)


def _axis(plot: Plot, start: date, end: date, *, y: float, top: float, x0: float, x1: float) -> None:
    x = date_scale(start, end, x0, x1)
    plot.add("line", x1=x0, y1=y, x2=x1, y2=y, class_="axis")
    for tick in date_ticks(start, end, most=max(3, int((x1 - x0) // 90))):
        plot.add("line", x1=x(tick), y1=top, x2=x(tick), y2=y, class_="grid")
        plot.add("text", x=x(tick), y=y + 16, class_="tick", text_anchor="middle", text=tick.strftime("%d %b %y"))


# --- the swimmer plot ------------------------------------------------------------------------------


def swimmer(lanes: Sequence, *, today: date, width: int = WIDTH) -> Plot:
    """One lane per participant: enrollment (triangle), infusion (diamond), the DLT window (band), each
    adverse event by onset as a dot coloured by its worst grade (a ring when serious, a square when a
    confirmed DLT), and each visit done (tick), missed (cross), overdue or due."""
    dates = [today]
    for lane in lanes:
        dates += [lane.enrolled_on, lane.infused_on, lane.window_end] + [e.on for e in lane.events]
    start, end = span(dates, pad=3)  # later visits (months ahead) are in the table, not on the axis
    x0, x1 = MARGIN_LEFT, width - MARGIN_RIGHT
    x, w = date_scale(start, end, x0, x1), day_width(start, end, x0, x1)
    top = 8
    plot = Plot(width, top + LANE * max(len(lanes), 1) + AXIS, label="Swimmer plot")
    _axis(plot, start, end, y=top + LANE * max(len(lanes), 1), top=top, x0=x0, x1=x1)
    for n, lane in enumerate(lanes):
        mid = top + n * LANE + LANE / 2
        plot.add("line", x1=x0, y1=mid, x2=x1, y2=mid, class_="lane")
        plot.add("text", x=8, y=mid + 4, class_="lane-label",
                 text=f"{lane.study_id}  C{lane.cohort} · DL{lane.dose_level}")  # fmt: skip
        if lane.window_start and lane.window_end:
            plot.add("rect", x=x(lane.window_start), y=mid - 7, width=x(lane.window_end) + w - x(lane.window_start),
                     height=14, class_="dlt-window",
                     title=f"{lane.study_id}: DLT window {lane.window_start} to {lane.window_end}")  # fmt: skip
        ex = x(lane.enrolled_on) + w / 2
        plot.add("polygon", points=f"{ex - 5:.1f},{mid + 5:.1f} {ex + 5:.1f},{mid + 5:.1f} {ex:.1f},{mid - 6:.1f}",
                 class_="enrolled", title=f"{lane.study_id}: enrolled {lane.enrolled_on}")  # fmt: skip
        if lane.infused_on:
            ix = x(lane.infused_on) + w / 2
            plot.add("polygon", points=f"{ix:.1f},{mid - 7:.1f} {ix + 6:.1f},{mid:.1f} {ix:.1f},{mid + 7:.1f} "
                     f"{ix - 6:.1f},{mid:.1f}", class_="infused",
                     title=f"{lane.study_id}: infused {lane.infused_on}")  # fmt: skip
        for visit in (v for v in lane.visits if start <= v.on <= end):
            vx = x(visit.on) + w / 2
            tip = f"{lane.study_id}: visit {visit.code} {visit.status} ({visit.on})"
            if visit.status == "missed":
                plot.add("path", d=f"M{vx - 4:.1f},{mid + 6:.1f} l8,8 m0,-8 l-8,8", class_="visit-missed", title=tip)
            else:
                plot.add("rect", x=vx - 1.5, y=mid + 6, width=3, height=7, class_=f"visit-{visit.status}", title=tip)
        for event in lane.events:
            ax = x(event.on) + w / 2
            tip = (f"{lane.study_id}: {event.term}, grade {event.grade}" + (", serious" if event.serious else "")
                   + (", DLT" if event.dlt_status == "confirmed" else "") + f" (onset {event.on})")  # fmt: skip
            css = f"ae grade-{event.grade}" + (" serious" if event.serious else "")
            if event.dlt_status == "confirmed":
                plot.add("rect", x=ax - 6, y=mid - 6, width=12, height=12, class_=css + " dlt", title=tip)
            else:
                plot.add("circle", cx=ax, cy=mid, r=5.5, class_=css, title=tip)
    tx = x(today) + w / 2
    plot.add("line", x1=tx, y1=top, x2=tx, y2=top + LANE * max(len(lanes), 1), class_="today", title=f"Today {today}")
    return plot


# --- adverse events by worst grade and dose level --------------------------------------------------


def grade_bars(rows: Sequence, *, width: int = WIDTH) -> Plot:
    """A stacked horizontal bar per dose level, one segment per worst grade, the count written in it."""
    most = max((row.total for row in rows), default=0) or 1
    x0, x1, bar = MARGIN_LEFT, width - MARGIN_RIGHT - 40, 30
    plot = Plot(width, 12 + len(rows) * (bar + 12) + AXIS, label="Adverse events by worst grade and dose level")
    unit = (x1 - x0) / most
    for n, row in enumerate(rows):
        y = 12 + n * (bar + 12)
        plot.add("text", x=8, y=y + bar / 2 + 5, class_="lane-label", text=f"DL{row.dose_level} {row.label}")
        left = x0
        for grade, count in sorted(row.counts.items()):
            if not count:
                continue
            plot.add("rect", x=left, y=y, width=count * unit, height=bar, class_=f"grade-{grade}",
                     title=f"DL{row.dose_level}: {count} event(s) of worst grade {grade}")  # fmt: skip
            plot.add("text", x=left + count * unit / 2, y=y + bar / 2 + 5, class_="in-bar", text_anchor="middle",
                     text=str(count))  # fmt: skip
            left += count * unit
        plot.add("text", x=left + 6, y=y + bar / 2 + 5, class_="tick", text=f"{row.total}")
    y = 12 + len(rows) * (bar + 12)
    plot.add("line", x1=x0, y1=y, x2=x1, y2=y, class_="axis")
    step = max((x1 - x0) / 5, 70)
    for grade in range(1, 6):
        lx = x0 + (grade - 1) * step
        plot.add("rect", x=lx, y=y + 10, width=14, height=14, class_=f"grade-{grade}")
        plot.add("text", x=lx + 20, y=y + 22, class_="tick", text=f"Grade {grade}")
    return plot


# --- enrollment over time by cohort -----------------------------------------------------------------


def enrollment_steps(series: dict[int, list[tuple[date, int]]], *, today: date, width: int = WIDTH) -> Plot:
    """Cumulative enrollment per cohort as a step line over site dates."""
    height, top = 240, 10
    start, end = span([d for points in series.values() for d, _ in points] + [today], pad=1)
    x0, x1 = MARGIN_LEFT, width - MARGIN_RIGHT
    x, w = date_scale(start, end, x0, x1), day_width(start, end, x0, x1)
    most = max((points[-1][1] for points in series.values() if points), default=0) or 1
    base = top + height - AXIS

    def y(count: int) -> float:
        return base - count * (base - top - 10) / most

    plot = Plot(width, height, label="Enrollment over time by cohort")
    _axis(plot, start, end, y=base, top=top, x0=x0, x1=x1)
    for count in range(0, most + 1):
        plot.add("text", x=x0 - 8, y=y(count) + 4, class_="tick", text_anchor="end", text=str(count))
    for n, (sequence, points) in enumerate(series.items()):
        coords, level = [], 0
        for day, count in points:
            px = x(day) + w / 2
            coords += [f"{px:.1f},{y(level):.1f}", f"{px:.1f},{y(count):.1f}"]
            level = count
        coords.append(f"{x(end) + w:.1f},{y(level):.1f}")
        plot.add("polyline", points=" ".join(coords), class_=f"series series-{n % 6}",
                 title=f"Cohort {sequence}: {level} enrolled")  # fmt: skip
        for day, count in points:
            plot.add("circle", cx=x(day) + w / 2, cy=y(count), r=3.5, class_=f"dot series-{n % 6}",
                     title=f"Cohort {sequence}: {count} enrolled by {day}")  # fmt: skip
        plot.add("text", x=x0 + 10 + n * 120, y=top + 12, class_=f"legend series-{n % 6}", text=f"Cohort {sequence}")
    return plot


# --- the escalation history -------------------------------------------------------------------------


def review_timeline(steps: Sequence, *, zone, today: date, width: int = WIDTH) -> Plot:
    """Each review on a date axis: opened (its data cut, a bar), each signature (a dot: approve or reject)
    and the decision taking effect (a diamond), with the cohort it opened."""

    def day(moment: datetime | None) -> date | None:
        return moment.astimezone(zone).date() if moment else None

    dates = [today]
    for step in steps:
        dates += [day(step.opened_at), day(step.decided_at)] + [day(s.signed_at) for s in step.signatures]
    start, end = span(dates)
    x0, x1 = MARGIN_LEFT, width - MARGIN_RIGHT
    x, w = date_scale(start, end, x0, x1), day_width(start, end, x0, x1)
    row, top = 44, 8
    plot = Plot(width, top + row * max(len(steps), 1) + AXIS, label="Escalation history")
    _axis(plot, start, end, y=top + row * max(len(steps), 1), top=top, x0=x0, x1=x1)
    for n, step in enumerate(steps):
        mid = top + n * row + row / 2 - 6
        plot.add("text", x=8, y=mid + 4, class_="lane-label", text=f"Review {step.review} · C{step.cohort_sequence}")
        opened, decided = day(step.opened_at), day(step.decided_at)
        ox = x(opened) + w / 2
        end_x = (x(decided) + w / 2) if decided else ox
        plot.add("line", x1=ox, y1=mid, x2=max(end_x, ox + 1), y2=mid, class_=f"review review-{step.state}")
        plot.add("rect", x=ox - 2, y=mid - 9, width=4, height=18, class_="data-cut",
                 title=f"Review {step.review} opened {opened}; data cut {step.data_cut}")  # fmt: skip
        for k, signature in enumerate(step.signatures):
            sx = x(day(signature.signed_at)) + w / 2 + k * 5
            when = signature.signed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            plot.add("circle", cx=sx, cy=mid, r=4.5, class_=f"signature sig-{signature.meaning}",
                     title=f"{signature.name}: {signature.meaning} at {when}")  # fmt: skip
        label = step.decision_display or "no decision yet"
        if decided and step.state == "effective":
            plot.add("polygon", points=f"{end_x:.1f},{mid - 8:.1f} {end_x + 8:.1f},{mid:.1f} {end_x:.1f},{mid + 8:.1f}"
                     f" {end_x - 8:.1f},{mid:.1f}", class_="decision",
                     title=f"Effective {decided}: {label}")  # fmt: skip
        opened_text = f" → cohort {step.opened_cohort} (DL{step.opened_dose_level})" if step.opened_cohort else ""
        plot.add("text", x=min(ox, x1 - 420), y=mid + 22, class_="tick",
                 text=f"{step.state_display}: {label}{opened_text}")  # fmt: skip
    return plot


# --- reporting-clock compliance ---------------------------------------------------------------------

CLOCK_PARTS = (("on_time", "On time"), ("late", "Late"), ("open_overdue", "Open, overdue"),
               ("open_pending", "Open, not yet due"))  # fmt: skip


def clock_bars(rows: Sequence, *, width: int = WIDTH) -> Plot:
    """One stacked bar per clock kind: reported on time, late, open past due, open not yet due."""
    most = max((row.total for row in rows), default=0) or 1
    x0, x1, bar = 290, width - MARGIN_RIGHT - 40, 24
    plot = Plot(width, 12 + len(rows) * (bar + 10) + AXIS, label="Reporting-clock compliance")
    unit = (x1 - x0) / most
    for n, row in enumerate(rows):
        y = 12 + n * (bar + 10)
        plot.add("text", x=8, y=y + bar / 2 + 5, class_="lane-label", text=row.label)
        left = x0
        for attr, label in CLOCK_PARTS:
            count = getattr(row, attr)
            if count:
                plot.add("rect", x=left, y=y, width=count * unit, height=bar, class_=f"clock-{attr}",
                         title=f"{row.label}: {count} {label.lower()}")  # fmt: skip
                plot.add("text", x=left + count * unit / 2, y=y + bar / 2 + 5, class_="in-bar", text_anchor="middle",
                         text=str(count))  # fmt: skip
                left += count * unit
        plot.add("text", x=left + 6, y=y + bar / 2 + 5, class_="tick", text=str(row.total))
    y = 12 + len(rows) * (bar + 10)
    for k, (attr, label) in enumerate(CLOCK_PARTS):
        lx = x0 + k * 180
        plot.add("rect", x=lx, y=y + 8, width=14, height=14, class_=f"clock-{attr}")
        plot.add("text", x=lx + 20, y=y + 20, class_="tick", text=label)
    return plot
