// Client behaviour that htmx attributes cannot express under a strict
// Content-Security-Policy: pause polling while the tab is hidden, and mark the
// numbers stale (instead of replacing them) when a request fails.
"use strict";

function isPoll(event) {
  return event.detail.elt instanceof Element && event.detail.elt.hasAttribute("data-poll");
}

document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && isPoll(event)) {
    event.preventDefault();
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    document.querySelectorAll("[data-poll]").forEach((elt) => htmx.trigger(elt, "poll-now"));
  }
});

function setStale(stale) {
  document.querySelectorAll("[data-poll]").forEach((elt) => elt.classList.toggle("stale", stale));
}

document.addEventListener("htmx:afterRequest", (event) => {
  setStale(!event.detail.successful);
});
