// MathJax reads the \( \) and \[ \] that pymdownx.arithmatex writes for $...$ and $$...$$ (docs/maths.md).
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
};
document$.subscribe(() => {
  if (window.MathJax.typesetPromise) {
    MathJax.typesetPromise();
  }
});
