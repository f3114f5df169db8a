// Interactivity for the server-rendered SVG charts: a legend whose buttons show and hide
// series, and a tooltip that follows the pointer over points, bars and cells.

export function enhanceCharts(root) {
  const tip = root.querySelector(".tooltip") || makeTooltip(root);
  for (const svg of root.querySelectorAll("svg.chart")) {
    addLegend(svg);
    svg.addEventListener("pointermove", (event) => {
      const target = event.target.closest("[data-tip]");
      if (!target) { tip.hidden = true; return; }
      tip.textContent = target.dataset.tip;
      tip.hidden = false;
      tip.style.left = `${event.clientX + 12}px`;
      tip.style.top = `${event.clientY + 12}px`;
    });
    svg.addEventListener("pointerleave", () => { tip.hidden = true; });
  }
}

function makeTooltip(root) {
  const el = root.createElement ? root.createElement("div") : document.createElement("div");
  el.className = "tooltip";
  el.hidden = true;
  document.body.append(el);
  return el;
}

function addLegend(svg) {
  const groups = [...svg.querySelectorAll("g.series[data-series]")];
  if (groups.length < 2) return;
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const g of groups) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", "true");
    const swatch = document.createElement("span");
    swatch.className = `sw ${[...g.classList].find((c) => /^s\d$/.test(c)) || ""}`;
    button.append(swatch, document.createTextNode(g.dataset.series));
    button.addEventListener("click", () => {
      const shown = button.getAttribute("aria-pressed") === "true";
      button.setAttribute("aria-pressed", String(!shown));
      g.classList.toggle("hidden", shown);
    });
    legend.append(button);
  }
  svg.before(legend);
}
