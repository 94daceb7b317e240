// The page works without this script (plain forms post and come back to the page). With it, an upload
// is sent without leaving the page, "已收到" shows at once, and the results of the unit's uploads are
// fetched every few seconds until none is waiting, so the outcome appears without a reload.
(function () {
  "use strict";
  const notice = document.getElementById("notice");
  const list = document.getElementById("uploads");
  if (!list || !window.fetch) return;

  function show(text, error) {
    notice.textContent = text;
    notice.classList.remove("hidden");
    notice.classList.toggle("error", !!error);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(items) {
    const ul = el("ul", "sent");
    for (const s of items) {
      const li = el("li", "sent-item state-" + s.state);
      li.dataset.id = s.id;
      const head = el("div", "sent-head");
      head.append(el("span", "sent-name", s.name), el("span", "receipt", "回执号 " + s.receipt));
      li.append(head);
      li.append(el("div", "sent-meta", s.obligation + " · " + s.received_at + " · " + (s.size / 1024).toFixed(1) + " KB · " + s.uploaded_by));
      li.append(el("div", "sent-result", s.result));
      if (s.errors && s.errors.length) {
        const wrap = el("div", "table");
        const table = el("table", "errors");
        const head = el("tr");
        for (const h of ["行", "列", "填写内容", "错误说明"]) head.append(el("th", "", h));
        const thead = el("thead");
        thead.append(head);
        table.append(thead);
        const body = el("tbody");
        for (const e of s.errors) {
          const tr = el("tr");
          for (const v of [e.row, e.column, e.value, e.reason]) tr.append(el("td", "", String(v)));
          body.append(tr);
        }
        table.append(body);
        wrap.append(table);
        li.append(wrap);
      }
      if (s.error_workbook) {
        const p = el("p");
        const a = el("a", "error-workbook", "下载错误清单");
        const query = list.dataset.status.includes("?") ? "?" + list.dataset.status.split("?")[1] : "";
        a.href = list.dataset.errors + s.id + query;
        p.append(a);
        li.append(p);
      }
      ul.append(li);
    }
    list.replaceChildren(items.length ? ul : el("p", "", "尚未通过本页上传文件。"));
  }

  let timer = null;
  async function refresh() {
    try {
      const answer = await fetch(list.dataset.status, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok) return;
      const items = await answer.json();
      render(items);
      const waiting = items.some((s) => s.state === "waiting");
      clearTimeout(timer);
      if (waiting) timer = setTimeout(refresh, 3000);
    } catch (e) {
      clearTimeout(timer);
      timer = setTimeout(refresh, 5000);
    }
  }

  for (const form of document.querySelectorAll("form.upload")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      button.textContent = "正在上传…";
      try {
        const answer = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        let text = "上传失败，请稍后重试。";
        try { text = (await answer.json()).notice || text; } catch (e) { /* not our answer */ }
        show(text, !answer.ok);
        if (answer.ok) { form.reset(); refresh(); }
      } catch (e) {
        show("网络中断，文件未能上传，请检查网络后重试。", true);
      } finally {
        button.disabled = false;
        button.textContent = "上传";
      }
    });
  }
  if (list.querySelector(".state-waiting")) refresh();
})();
