// What a person at this viewport could not see whole; [] when all is visible.
() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > width) problems.push(`page scrolls sideways: ${root.scrollWidth} > ${width}`);
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '');
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  for (const e of document.body.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    let inside = false;
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) if (scrolls(p)) inside = true;
    if (!inside && (box.right > width + 0.5 || box.left < -0.5))
      problems.push(`${name(e)} spans ${box.left.toFixed(0)}..${box.right.toFixed(0)} of ${width}`);
    const style = getComputedStyle(e);
    if (scrolls(e) && e.scrollWidth > e.clientWidth + 1)
      problems.push(`${name(e)} scrolls sideways: ${e.scrollWidth} > ${e.clientWidth}`);
    if (['hidden', 'clip'].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1 && !(e instanceof SVGElement))
      problems.push(`${name(e)} clips its content: ${e.scrollWidth} > ${e.clientWidth}`);
  }
  return problems;
}
