/* The console's small behaviours, by event delegation so that content htmx swaps in works too.
 * Everything works without this script (plain forms and links); it adds confirmation
 * dialogs, modal dialogs and copy buttons. No inline handlers: the CSP allows none. */
(function () {
  "use strict";

  var confirmDialog = null;
  var pending = null; // {form, submitter, checkbox, opener}

  function announce(text) {
    var live = document.getElementById("announcer");
    if (!live) return;
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  function openModal(dialog, opener) {
    dialog._opener = opener || document.activeElement;
    dialog.showModal();
    var first = dialog.querySelector("[autofocus], textarea, input:not([type=hidden]), select, button");
    if (first) first.focus();
  }

  function closeModal(dialog) {
    dialog.close();
  }

  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog && dialog.tagName === "DIALOG" && dialog._opener && document.contains(dialog._opener)) {
      dialog._opener.focus();
    }
  }, true);

  function askToConfirm(text, okLabel, danger, state) {
    confirmDialog = confirmDialog || document.getElementById("confirm-dialog");
    if (!confirmDialog) return true;
    pending = state;
    confirmDialog.querySelector("#confirm-text").textContent = text;
    var ok = confirmDialog.querySelector("[data-confirm-ok]");
    ok.textContent = okLabel || "Confirm";
    ok.className = danger ? "danger" : "";
    openModal(confirmDialog, state.opener);
    return false;
  }

  // Forms marked data-confirm ask before they are sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-confirm]") || form._confirmed) return;
    event.preventDefault();
    askToConfirm(form.getAttribute("data-confirm"), form.getAttribute("data-confirm-label"),
      form.hasAttribute("data-confirm-danger"), { form: form, submitter: event.submitter || null, opener: event.submitter || document.activeElement });
  }, true);

  // Checkboxes marked data-confirm-on / data-confirm-off ask before their change is sent;
  // cancelling puts the box back as it was.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[type=checkbox][data-confirm-on], input[type=checkbox][data-confirm-off]")) return;
    var text = box.checked ? box.getAttribute("data-confirm-on") : box.getAttribute("data-confirm-off");
    if (!text) return;
    askToConfirm(text, box.getAttribute("data-confirm-label"), false, { form: box.form, checkbox: box, opener: box });
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : event.target.parentElement;
    if (!target) return;

    var ok = target.closest("[data-confirm-ok]");
    if (ok && pending) {
      var state = pending; pending = null;
      closeModal(confirmDialog);
      if (state.form) {
        state.form._confirmed = true;
        if (state.form.requestSubmit) state.form.requestSubmit(state.submitter && state.submitter.form === state.form ? state.submitter : undefined);
        else state.form.submit();
        state.form._confirmed = false;
      }
      return;
    }
    if (target.closest("[data-confirm-cancel]") && pending) {
      if (pending.checkbox) pending.checkbox.checked = !pending.checkbox.checked;
      pending = null;
      closeModal(confirmDialog);
      return;
    }

    var opener = target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
      if (dialog) { event.preventDefault(); openModal(dialog, opener); }
      return;
    }
    var closer = target.closest("[data-dialog-close]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) { event.preventDefault(); closeModal(open); }
      return;
    }

    var copy = target.closest("[data-copy], [data-copy-from]");
    if (copy) {
      event.preventDefault();
      var text = copy.getAttribute("data-copy");
      if (text === null) {
        var source = document.getElementById(copy.getAttribute("data-copy-from"));
        text = source ? ("value" in source ? source.value : source.textContent) : "";
      }
      var done = function () {
        announce("Copied to the clipboard");
        var label = copy.textContent;
        copy.textContent = "Copied";
        window.setTimeout(function () { copy.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { announce("Copy failed: select the text and copy it"); });
      } else {
        var area = document.createElement("textarea");
        area.value = text; area.setAttribute("readonly", ""); area.className = "visually-hidden";
        document.body.appendChild(area); area.select();
        try { document.execCommand("copy"); done(); } catch (e) { announce("Copy failed: select the text and copy it"); }
        document.body.removeChild(area);
      }
    }
  });

  // A cancelled confirmation (Escape) also puts a checkbox back.
  document.addEventListener("cancel", function (event) {
    if (event.target === confirmDialog && pending) {
      if (pending.checkbox) pending.checkbox.checked = !pending.checkbox.checked;
      pending = null;
    }
  }, true);

  // A table wider than the screen scrolls in its box; keyboard users must reach it to scroll
  // (WCAG 2.1.1), so such a box becomes a named, focusable region — only while it scrolls.
  function markScrollableTables() {
    var wraps = document.querySelectorAll(".table-wrap");
    for (var i = 0; i < wraps.length; i++) {
      var wrap = wraps[i];
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        if (!wrap.hasAttribute("aria-label")) {
          var caption = wrap.querySelector("caption");
          wrap.setAttribute("aria-label", (caption ? caption.textContent.trim() + ", " : "") + "table, scrolls sideways");
        }
      } else if (wrap.getAttribute("tabindex") === "0") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", markScrollableTables);
  else markScrollableTables();
  window.addEventListener("resize", markScrollableTables);
  document.addEventListener("htmx:afterSettle", markScrollableTables);
})();
