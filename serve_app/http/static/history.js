// History page: GET /api/tasks with the stored token; search, status filter, pages.
"use strict";

(() => {
  const PAGE = 20;
  const $ = (id) => document.getElementById(id);
  let offset = 0;

  function describe(task) {
    const bits = [VS.when(task.created_at)];
    if (task.platform) bits.push(task.platform);
    if (task.duration) bits.push(VS.clock(task.duration));
    if (task.error) bits.push(task.error.message);
    return bits.filter(Boolean).join(" · ");
  }

  function row(task) {
    const title = task.title || task.url;
    return VS.el(
      "li",
      {},
      VS.el(
        "a",
        { href: "/view/" + encodeURIComponent(task.task_id), dataset: { taskId: task.task_id } },
        VS.el("div", { className: "task-top" }, VS.el("span", { className: "task-title", text: title }), VS.badge(task.status)),
        VS.el("div", { className: "muted", text: describe(task) }),
      ),
    );
  }

  async function load() {
    const params = new URLSearchParams({ limit: PAGE, offset });
    const q = $("q").value.trim();
    const status = $("status").value;
    if (q) params.set("q", q);
    if (status) params.set("status", status);
    $("list-error").hidden = true;
    try {
      const page = await VS.api("/api/tasks?" + params, { auth: true });
      $("tasks").replaceChildren(...page.tasks.map(row));
      $("empty").hidden = page.tasks.length > 0;
      $("prev").disabled = offset === 0;
      $("next").disabled = page.next_offset === null;
      $("page").textContent = page.tasks.length ? `${offset + 1}–${offset + page.tasks.length}` : "";
    } catch (error) {
      if (error.status === 401) {
        askToken(VS.token() ? "访问令牌无效。Invalid API token." : "");
      } else {
        $("list-error").textContent = `${error.message} [${error.code}]`;
        $("list-error").hidden = false;
      }
    }
  }

  function askToken(message) {
    $("token-form").hidden = false;
    $("token-error").textContent = message;
    $("token-error").hidden = !message;
    $("token").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    VS.setToken($("token").value.trim());
    $("token-form").hidden = true;
    load();
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  $("status").addEventListener("change", () => {
    offset = 0;
    load();
  });
  $("prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    load();
  });
  $("next").addEventListener("click", () => {
    offset += PAGE;
    load();
  });

  if (VS.token()) load();
  else askToken("");
})();
