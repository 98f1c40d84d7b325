// edgekit review: rubric buttons, save, flag, keyboard navigation (no inline script: see the page's CSP)
"use strict";
const body = document.body, $ = (id) => document.getElementById(id);
const points = $("points"), comment = $("comment"), status = $("status"), grader = $("grader");
grader.value = localStorage.getItem("edgekit-grader") || grader.value;
grader.addEventListener("change", () => localStorage.setItem("edgekit-grader", grader.value));

function pick(button) {
  document.querySelectorAll("button.level").forEach((b) => b.classList.toggle("picked", b === button));
  points.value = button.dataset.points;
}
document.querySelectorAll("button.level").forEach((b) => b.addEventListener("click", () => pick(b)));

async function post(action, data) {
  const xsrf = document.querySelector("meta[name=xsrf]").content;
  const r = await fetch("/api/" + action, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
    body: JSON.stringify({student: body.dataset.student, question: body.dataset.question, grader: grader.value, ...data})});
  const reply = await r.json().catch(() => ({error: "HTTP " + r.status}));
  if (!r.ok) throw new Error(reply.error || "HTTP " + r.status);
  return reply;
}

let saving = false;
async function save(advance) {
  if (saving) return;
  if (points.value === "") { status.textContent = "pick a level or type the points first"; status.className = "error"; return; }
  saving = true;
  status.textContent = "saving…"; status.className = "muted";
  try {
    const reply = await post("score", {points: Number(points.value), comment: comment.value});
    $("progress").textContent = reply.graded + " of " + reply.total + " graded";
    status.textContent = "saved"; status.dataset.saved = body.dataset.student;
    if (advance && body.dataset.next) location.assign(body.dataset.next);
  } catch (e) {
    status.textContent = e.message; status.className = "error";
  } finally { saving = false; }
}
$("save").addEventListener("click", () => save(true));

async function flag() {
  const now = body.dataset.flagged !== "true";
  try {
    await post("flag", {flagged: now});
    body.dataset.flagged = String(now);
    $("flag").firstChild.textContent = now ? "unflag " : "flag ";
    status.textContent = now ? "flagged" : "flag removed";
  } catch (e) { status.textContent = e.message; status.className = "error"; }
}
$("flag").addEventListener("click", flag);

document.addEventListener("keydown", (e) => {
  const typing = e.target.matches("input, textarea");
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); save(true); return; }
  if (typing) { if (e.key === "Escape") e.target.blur(); return; }  // never steal keys while typing
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  const go = (url) => { if (url) location.assign(url); };
  if (e.key === "j" || e.key === "ArrowRight" || e.key === "ArrowDown") { e.preventDefault(); go(body.dataset.next); }
  else if (e.key === "k" || e.key === "ArrowLeft" || e.key === "ArrowUp") { e.preventDefault(); go(body.dataset.prev); }
  else if (e.key === "Enter") { e.preventDefault(); save(true); }
  else if (e.key === "f") { flag(); }
  else if (e.key === "c") { e.preventDefault(); comment.focus(); }
  else {
    const b = document.querySelector(`button.level[data-key="${CSS.escape(e.key)}"]`);
    if (b) { e.preventDefault(); pick(b); }
  }
});
