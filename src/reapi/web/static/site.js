// Progressive enhancement of the docs pages: code examples become tabs with a copy button.
// Without this file every example is shown, one under the other.
"use strict";

function tabify(box) {
  const examples = Array.from(box.querySelectorAll(":scope > .example"));
  if (examples.length < 2) return;
  const bar = document.createElement("div");
  bar.className = "tabbar";
  const list = document.createElement("div");
  list.className = "tabs";
  list.setAttribute("role", "tablist");
  bar.appendChild(list);
  const buttons = examples.map((example, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "tab");
    button.textContent = example.querySelector("figcaption").textContent;
    button.addEventListener("click", () => select(index));
    list.appendChild(button);
    return button;
  });
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy";
  copy.textContent = "Copy";
  copy.addEventListener("click", async () => {
    const shown = examples.find((example) => !example.hidden);
    try {
      await navigator.clipboard.writeText(shown.querySelector("code").textContent);
      copy.textContent = "Copied";
    } catch (error) {
      copy.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  bar.appendChild(copy);

  function select(chosen) {
    examples.forEach((example, index) => { example.hidden = index !== chosen; });
    buttons.forEach((button, index) => {
      button.setAttribute("aria-selected", String(index === chosen));
    });
  }

  box.classList.add("tabbed");
  box.insertBefore(bar, box.firstChild);
  select(0);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach(tabify);
});
