// The fleet dashboard: polls /api/v1/fleet and redraws the page from it.
//
// Every value comes from git or the clusters, so every value is text: nodes are built with
// createElement and textContent, never innerHTML; links get an href only when they are http(s).
// The timeline SVG is drawn by the server (values escaped there) and parsed as XML, so any
// script in it would stay inert. The page only reads: it sends GET requests and nothing else.
"use strict";

(function () {
  const POLL_MS = 1000;
  let generation = -1;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function link(item, fallback) {
    if (!item || !item.text) return document.createTextNode(fallback || "—");
    if (/^https?:\/\//.test(item.url || "")) return el("a", { href: item.url }, item.text);
    return document.createTextNode(item.text);
  }

  function short(text) {
    return /^[0-9a-f]{40}$/.test(text || "") ? text.slice(0, 12) : text;
  }

  function replace(id, ...children) {
    const node = document.getElementById(id);
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function badge(state, label) {
    return el("span", { class: "badge state-" + state }, label);
  }

  function renderHeader(doc) {
    document.title = "gitops: " + (doc.fleet || "fleet") + " " + doc.status;
    replace("fleet-name", doc.fleet || "fleet");
    const status = replace("fleet-status", doc.status);
    status.className = "badge state-" + doc.status;
    replace("fleet-reason", doc.reason || "");
    const rev = doc.revision || { text: "" };
    replace("revision", link({ text: short(rev.text), url: rev.url }));
    replace("plan-id", link(doc.plan));
    replace("nodes-total", doc.nodes.onTarget + " of " + doc.nodes.replicas);
    replace("updated", new Date(doc.updated * 1000).toISOString().replace(".000", ""));
    const halt = document.getElementById("halt");
    halt.hidden = !doc.halt;
    if (doc.halt) {
      replace("halt-title", doc.halt.status === "refused" ? "Refused to act" : "Halted");
      replace("halt-reason", doc.halt.reason);
      const pr = doc.halt.revertPullRequest;
      replace("revert", pr ? el("span", {}, "Revert pull request: ", link(pr)) : "No revert pull request (yet).");
    }
    const stalled = document.getElementById("stalled");
    stalled.hidden = !doc.stalled;
    replace("stalled-reason", doc.stalled || "");
  }

  function renderWaves(doc) {
    const items = doc.waves.map((w) =>
      el(
        "li",
        { class: "wave" + (w.active ? " active" : ""), "data-wave": w.name, "aria-current": w.active ? "step" : null },
        el("h3", {}, w.index + ". " + w.name),
        badge(w.status, w.label),
        el("p", { class: "count" }, w.onTarget + "/" + w.replicas + " nodes on target"),
        el("p", { class: "members" }, w.clusters.length + " cluster(s)"),
        w.waitingFor.length ? el("ul", { class: "why" }, ...w.waitingFor.map((why) => el("li", {}, why))) : null,
      ),
    );
    replace("waves", ...items);
  }

  function renderMatrix(doc) {
    const pools = [];
    for (const c of doc.clusters) for (const p of c.pools) if (!pools.includes(p.name)) pools.push(p.name);
    pools.sort();
    const head = el("tr", {}, el("th", { scope: "col" }, "cluster"), ...pools.map((p) => el("th", { scope: "col" }, p)));
    document.querySelector("#matrix thead").replaceChildren(head);
    const rows = [];
    for (const w of doc.waves) {
      rows.push(el("tr", { class: "wave-row" }, el("th", { scope: "rowgroup", colspan: pools.length + 1 }, "wave " + w.index + ": " + w.name)));
      for (const c of doc.clusters.filter((c) => c.wave === w.name)) {
        const labels = Object.entries(c.labels).map(([k, v]) => el("span", { class: "label" }, k + "=" + v));
        const cells = pools.map((name) => {
          const p = c.pools.find((p) => p.name === name);
          if (!p) return el("td", { class: "none" }, el("span", { class: "visually-hidden" }, "no pool"), "—");
          const count = p.onTarget === null ? "?/" + p.replicas : p.onTarget + "/" + p.replicas;
          return el(
            "td",
            { class: "pool state-" + p.state, "data-cluster": c.name, "data-pool": p.name, "data-state": p.state },
            el("code", { class: "image" }, p.image),
            el("span", { class: "count", "aria-label": count.replace("/", " of ") + " nodes on target" }, count),
            badge(p.state, p.label),
            p.detail ? el("span", { class: "detail" }, p.detail) : null,
          );
        });
        rows.push(
          el(
            "tr",
            { "data-cluster": c.name },
            el("th", { scope: "row" }, el("span", { class: "cluster" }, c.name), " ", badge(c.state, c.label), el("span", { class: "labels" }, ...labels)),
            ...cells,
          ),
        );
      }
    }
    document.querySelector("#matrix tbody").replaceChildren(...rows);
  }

  function renderDrift(doc) {
    const drifted = doc.clusters.filter((c) => c.findings.length);
    if (!drifted.length) {
      replace("drift", el("p", {}, "No drift found."));
      return;
    }
    const blocks = drifted.map((c) =>
      el(
        "article",
        { class: "drift", "data-cluster": c.name },
        el("h3", {}, c.name + ": " + c.findings.length + " finding(s)"),
        c.driftPullRequest ? el("p", {}, "Drift pull request: ", link(c.driftPullRequest)) : el("p", {}, "No drift pull request open."),
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ...["kind", "pool", "node", "what differs"].map((h) => el("th", { scope: "col" }, h)))),
          el(
            "tbody",
            {},
            ...c.findings.map((f) =>
              el(
                "tr",
                { "data-fingerprint": f.fingerprint },
                el("td", {}, f.kind),
                el("td", {}, f.pool || "—"),
                el("td", {}, f.node || "—"),
                el("td", { class: "differs" }, f.fact ? f.fact + ": expected " + f.expected + ", observed " + f.observed : f.message),
              ),
            ),
          ),
        ),
      ),
    );
    replace("drift", ...blocks);
  }

  function renderPhases(doc) {
    replace("phases", ...doc.phases.map((p) => el("li", { class: "phase phase-" + p.kind }, el("strong", {}, p.name), " " + p.kind + ": " + p.message)));
  }

  async function fetchTimeline() {
    const response = await fetch("/api/v1/fleet/timeline.svg", { cache: "no-store" });
    const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const root = parsed.documentElement;
    return root.nodeName === "svg" ? document.importNode(root, true) : null;
  }

  async function poll() {
    try {
      const response = await fetch("/api/v1/fleet", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const doc = await response.json();
      if (doc.generation !== generation) {
        // Both fetched before anything is drawn, so the page changes at once, never half.
        const timeline = await fetchTimeline();
        renderHeader(doc);
        renderWaves(doc);
        renderMatrix(doc);
        renderDrift(doc);
        renderPhases(doc);
        if (timeline) replace("timeline", timeline);
        generation = doc.generation;
        document.body.dataset.generation = String(generation);
      }
      replace("connection", "");
    } catch (err) {
      replace("connection", "Cannot reach the controller (" + err.message + "); retrying.");
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
