// Each chart's fault-free band: present, drawn behind the lines, lightly shaded, named in
// the caption, and filling exactly the values that do not breach (from the axis up to the
// limit line, wherever that line runs). [] when every chart has one.
() => {
  const problems = [];
  const figures = [...document.querySelectorAll('figure.chart')];
  if (!figures.length) problems.push('no chart on the page');
  for (const figure of figures) {
    const name = `${figure.closest('article').dataset.deployment}/${figure.dataset.trigger}`;
    const band = figure.querySelector('[data-testid="fault-free-band"]');
    const limit = figure.querySelector('[data-testid="limit-line"]');
    const axis = figure.querySelector('line.axis');
    if (!band || !limit) { problems.push(`${name}: band ${!!band}, limit line ${!!limit}`); continue; }
    for (const line of figure.querySelectorAll('path.value, path.reference, .limit, line.mark'))
      if (!(band.compareDocumentPosition(line) & Node.DOCUMENT_POSITION_FOLLOWING))
        problems.push(`${name}: band drawn over ${line.getAttribute('class')}`);
    const opacity = parseFloat(getComputedStyle(band).fillOpacity);
    if (!(opacity > 0 && opacity <= 0.3)) problems.push(`${name}: band fill-opacity ${opacity}`);
    if (!/fault-free/.test(figure.querySelector('figcaption').textContent))
      problems.push(`${name}: the caption does not name the band`);
    const floor = parseFloat(axis.getAttribute('y1'));
    const inside = (x, y) => band.isPointInFill(new DOMPoint(x, y));
    const total = limit.getTotalLength();
    let checked = 0;
    for (let at = 3; at < total - 3; at += 4) {
      const p = limit.getPointAtLength(at);
      // Only along the line's level runs (a relative limit steps between evaluations).
      if (limit.getPointAtLength(at - 3).y !== p.y || limit.getPointAtLength(at + 3).y !== p.y) continue;
      checked += 1;
      if (!inside(p.x, p.y + 2) || inside(p.x, p.y - 2))
        problems.push(`${name}: band does not end at the limit line at x=${p.x.toFixed(0)}`);
      if (!inside(p.x, floor - 2) || inside(p.x, floor + 2))
        problems.push(`${name}: band does not start at the axis at x=${p.x.toFixed(0)}`);
    }
    if (!checked) problems.push(`${name}: limit line has no level run to check`);
  }
  return [...new Set(problems)];
}
