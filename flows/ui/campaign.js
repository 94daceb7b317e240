// Added to Prefect's V1 UI by `campaign serve` (flows/serve.py, dress_ui). The forms' field titles are
// the campaign's Chinese; Prefect appends the English " (Optional)" to every field that may stay empty.
// It reads "（选填）" instead, wherever a form shows it (run forms, approval forms), as they render.
(function () {
  const SUFFIX = " (Optional)";
  function translate(root) {
    for (const label of root.querySelectorAll(".schema-form-property__label")) {
      const text = label.firstChild;
      if (text && text.nodeType === Node.TEXT_NODE && text.data.endsWith(SUFFIX)) {
        text.data = text.data.slice(0, -SUFFIX.length) + "（选填）";
      }
    }
  }
  new MutationObserver(() => translate(document)).observe(document.documentElement, {
    childList: true, subtree: true, characterData: true,
  });
})();
