"""The HTML report: one self-contained file (PNG key images embedded as data URIs).

Sections appear only for stages in the result: series and warnings, lungs and lobes (with a
coloured lobe map), the nodule table (each nodule's key image with its outline), the
guidelines, the report's findings with the report/image agreement, and a line naming the
stages that are not in this result. The differential will appear here once its stage
produces it; it is never filled in. Every value from the DICOM header or the report text
is HTML-escaped.

The page needs no script and no network; ``@media print`` keeps tables and images whole, so
printing to PDF from a browser gives a clean document.

Example:
    >>> html = render_html(result, volume)                             # doctest: +SKIP
    >>> Path("report.html").write_text(html, encoding="utf-8")         # doctest: +SKIP
"""

from __future__ import annotations

import base64
from html import escape

from medmm.anatomy.regions import LOBE_NAMES
from medmm.report.key_images import LOBE_COLOURS, lobe_map_image, nodule_key_image, png_bytes
from medmm.types import AnalysisResult, Volume

__all__ = ["render_html"]

_ALL_STAGES = {
    "anatomy": "lungs and lobes",
    "detection": "nodule detection",
    "guidelines": "Lung-RADS, Fleischner and Brock",
    "text": "report text",
    "fusion": "report-image alignment",
    "reasoning": "differential diagnosis",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1a1a1a; max-width: 1100px; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.banner { background: #fff4d6; border: 1px solid #e0b44c; padding: .5em .8em; margin: 1em 0; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; }
img.key { width: 192px; }
.swatch { display: inline-block; width: 1em; height: 1em; vertical-align: middle; margin-right: .3em; }
.muted { color: #666; }
@media print {
  body { margin: 0; }
  table, tr, img, figure { page-break-inside: avoid; }
  .banner { border-color: #999; }
}
"""


def _img(rgb_png: bytes, alt: str, css: str = "") -> str:
    data = base64.b64encode(rgb_png).decode("ascii")
    cls = f' class="{css}"' if css else ""
    return f'<img{cls} alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _series(result: AnalysisResult) -> str:
    s = result.series
    rows = [
        ("Series UID", s.series_uid),
        ("Study UID", s.study_uid),
        ("Description", s.series_description),
        ("Modality", s.modality),
        ("Kernel", s.convolution_kernel),
        ("Grid (z, y, x)", " x ".join(str(v) for v in result.shape)),
        ("Spacing (mm)", " x ".join(f"{v:.3g}" for v in result.spacing_mm)),
        ("Orientation", result.orientation),
        ("medmm", result.medmm_version),
    ]
    if result.detector:
        rows.append(
            ("Detector", f"{result.detector.get('name', '')} (sha256 {result.detector.get('sha256', '')[:12]})")
        )
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v)) or '&mdash;'}</dd>" for k, v in rows)
    return f"<h2>Series</h2><dl>{body}</dl>"


def _lungs(result: AnalysisResult, volume: Volume | None) -> str:
    lungs = result.lungs
    if lungs is None:
        return ""
    rows = "".join(
        f'<tr><td><span class="swatch" style="background: rgb{LOBE_COLOURS[n + 1]}"></span>{name}</td>'
        f'<td class="num">{lungs.lobe_volumes_ml.get(name, 0.0):.0f}</td>'
        f"<td>{escape(lungs.lobe_methods.get(name, ''))}</td></tr>"
        for n, name in enumerate(LOBE_NAMES)
    )
    table = (
        "<table><tr><th>Lobe</th><th>Volume (mL)</th><th>Boundaries from</th></tr>"
        f"{rows}<tr><td>Right lung</td><td class='num'>{lungs.right_volume_ml:.0f}</td><td></td></tr>"
        f"<tr><td>Left lung</td><td class='num'>{lungs.left_volume_ml:.0f}</td><td></td></tr></table>"
    )
    figure = ""
    if volume is not None and result.maps is not None:
        figure = (
            "<figure>"
            + _img(png_bytes(lobe_map_image(volume, result.maps.lobes)), "coronal slice with the lobes coloured")
            + "<figcaption class='muted'>Coronal slice; patient right on the left.</figcaption></figure>"
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in lungs.notes)
    return f"<h2>Lungs and lobes</h2>{table}{figure}" + (f"<ul>{notes}</ul>" if notes else "")


def _nodules(result: AnalysisResult, volume: Volume | None) -> str:
    nodules = result.nodules
    if nodules is None:
        return ""
    if not nodules:
        return f"<h2>Nodules</h2><p id='no-nodules'>No nodule at or above probability {result.nodule_threshold}.</p>"
    head = (
        "<tr><th>#</th><th>Lobe</th><th>Centre x, y, z (LPS mm)</th><th>Diameter (mm)</th><th>Volume (mm&sup3;)</th>"
        "<th>Probability</th><th>Texture</th><th>Calcification</th><th>Key image</th></tr>"
    )
    rows = []
    for n, nod in enumerate(nodules, start=1):
        image = ""
        if volume is not None and result.maps is not None and result.maps.nodules is not None:
            image = _img(
                png_bytes(nodule_key_image(volume, result.maps.nodules, nod, n)),
                f"nodule {n}, axial slice {nod.voxel_index[0]}",
                "key",
            )
        centre = ", ".join(f"{c:.1f}" for c in nod.center_lps_mm)
        rows.append(
            f"<tr class='nodule'><td>{n}</td><td>{escape(nod.lobe) or '&mdash;'}</td><td>{centre}</td>"
            f"<td class='num'>{nod.diameter_mm:.1f}</td><td class='num'>{nod.volume_mm3:.0f}</td>"
            f"<td class='num'>{nod.probability:.2f}</td><td>{escape(nod.texture.value.replace('_', '-'))}</td>"
            f"<td>{escape(nod.calcification)}</td><td>{image}</td></tr>"
        )
    return (
        f"<h2>Nodules</h2><p>{len(nodules)} nodule(s) at or above probability {result.nodule_threshold}, "
        "most probable first. Key images: axial slice through the centre, lung window, outline in red.</p>"
        f"<table id='nodules'>{head}{''.join(rows)}</table>"
    )


def _guidelines(result: AnalysisResult) -> str:
    g = result.guidelines
    if g is None:
        return ""
    rows = "".join(
        f"<tr><td>{n}</td><td>{escape(x.lung_rads)}</td><td>{escape(x.lung_rads_rule)}</td>"
        f"<td class='num'>{100 * x.brock_probability:.1f} %</td></tr>"
        for n, x in enumerate(g.nodules, start=1)
    )
    table = (
        "<table id='guidelines'><tr><th>#</th><th>Lung-RADS</th><th>Rule</th><th>Brock probability</th></tr>"
        f"{rows}</table>"
        if rows
        else ""
    )
    assumed = "".join(f"<li>{escape(a)}</li>" for a in g.assumptions)
    fleischner = (
        f"<p><b>Fleischner 2017</b> (if incidental): {escape(g.fleischner)} "
        f"<span class='muted'>({escape(g.fleischner_cell)})</span></p>"
        if g.fleischner
        else ""
    )
    return (
        f"<h2>Guidelines</h2><p><b>Lung-RADS v2022: {escape(g.lung_rads)}</b> -- {escape(g.lung_rads_management)}</p>"
        f"{fleischner}{table}<p class='muted'>Assumed, not measured:</p><ul class='muted'>{assumed}</ul>"
    )


_STATUS = {
    "confirmed": "confirmed in image",
    "not_found_in_image": "<b>not found in image</b>",
    "not_in_report": "<b>not in report</b>",
}


def _report(result: AnalysisResult) -> str:
    r = result.report
    if r is None:
        return ""
    rows = []
    for f in r.findings:
        status = "absent (negated)" if f.negated else ("uncertain" if f.uncertain else "present")
        peak = (
            "({:.0f}, {:.0f}, {:.0f})".format(*f.attention_peak_lps_mm) if f.attention_peak_lps_mm is not None else ""
        )
        support = f"{f.image_support:.2f}" if f.image_support is not None else ""
        rows.append(
            f"<tr><td>{escape(f.text)}</td><td>{escape(f.label)}</td><td>{escape(f.site)}</td>"
            f"<td class='num'>{'' if f.size_mm is None else f'{f.size_mm:g}'}</td><td>{status}</td>"
            f"<td class='num'>{peak}</td><td class='num'>{support}</td></tr>"
        )
    findings = (
        "<table id='report-findings'><tr><th>Words</th><th>Finding</th><th>Site</th><th>Size (mm)</th>"
        "<th>Status</th><th>Attention peak (LPS mm)</th><th>Image support</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No findings were read from the report.</p>"
    )
    if r.agreement is None:
        agreement = "<p class='muted'>No agreement check: detection did not run.</p>"
    elif not r.agreement:
        agreement = "<p id='agreement'>The report states no nodule and none was detected at or above 6 mm.</p>"
    else:
        items = "".join(
            f"<li class='{a.status}'>{_STATUS[a.status]}: {escape(a.detail)}"
            + (f" (nodule #{a.nodule + 1})" if a.nodule is not None else "")
            + "</li>"
            for a in r.agreement
        )
        agreement = f"<ul id='agreement'>{items}</ul>"
    return f"<h2>Report and image</h2>{findings}<h3>Agreement</h3>{agreement}"


def _evidence_list(items: tuple, sign: str) -> str:
    return "".join(
        f"<li>{sign} {escape(e.label)} <span class='muted'>({escape(e.source)}: {escape(e.detail)}; "
        f"log-LR {e.log_lr:+.2f}, {escape(e.basis)})</span></li>"
        for e in items
    )


def _differential(result: AnalysisResult) -> str:
    d = result.differential
    if d is None:
        return ""
    rows = []
    for rank, x in enumerate(d.diagnoses[:5], start=1):
        evidence = _evidence_list(x.supporting, "+") + _evidence_list(x.opposing, "&minus;")
        rows.append(
            f"<tr><td>{rank}</td><td>{escape(x.label)}<br><span class='muted'>{escape(x.code)}</span></td>"
            f"<td class='num'>{100 * x.probability:.1f} %</td><td class='num'>{x.ontology_log_odds:+.2f}</td>"
            f"<td><ul>{evidence}</ul></td></tr>"
        )
    reported = (
        f"<p>The report's own impression: {escape(', '.join(d.reported_diagnoses))}.</p>"
        if d.reported_diagnoses
        else ""
    )
    regions = ", ".join(f"{escape(r.region)} {r.abnormality:.2f}" for r in d.regions if r.abnormality >= 0.5)
    return (
        "<h2>Differential diagnosis</h2>"
        f"<p class='muted'>Read from: {escape(' + '.join(d.inputs))}. Probability = softmax of the ontology's "
        "evidence weights plus the region GNN; trained on synthetic cases only.</p>"
        "<table id='differential'><tr><th>#</th><th>Diagnosis</th><th>Probability</th>"
        f"<th>Ontology log-odds</th><th>Evidence (+ for, &minus; against)</th></tr>{''.join(rows)}</table>"
        f"{reported}<p>Regions scored abnormal (&ge; 0.5): {regions or 'none'}.</p>"
    )


def render_html(result: AnalysisResult, volume: Volume | None = None) -> str:
    """The HTML report of one result.

    Args:
        result: Analysis result (with ``maps`` for outlines and the lobe map).
        volume: The analyzed CT; without it the report has no images.

    Returns:
        A complete HTML5 document.
    """
    missing = [label for stage, label in _ALL_STAGES.items() if stage not in result.stages]
    warnings = "".join(f"<li>{escape(w)}</li>" for w in result.warnings)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>medmm report {escape(result.series.series_uid[:64])}</title><style>{_CSS}</style></head><body>",
        "<h1>medmm chest CT analysis</h1>",
        "<div class='banner'>Research software output, not verified by a person and not for clinical use.</div>",
        _series(result),
        f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else "",
        _lungs(result, volume),
        _nodules(result, volume),
        _guidelines(result),
        _report(result),
        _differential(result),
        (
            "<p class='muted' id='absent'>Not in this result (stage not run or not built): "
            f"{escape(', '.join(missing))}.</p>"
            if missing
            else ""
        ),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
