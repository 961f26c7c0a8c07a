// Passgate pages: sign-in (passkey, passkey autofill, Temporary Access Pass) and Security info.
// Plain JavaScript, no build step. Talks to the headless API under /api with JSON.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const ERROR_ACTIONS = JSON.parse($("#error-actions")?.textContent || "{}");

  // -- errors: every failure is shown with its stable number and name and what to do next --------
  class PageError extends Error {
    constructor(title, message, action, code = null) {
      super(message);
      this.title = title; // e.g. "Error 135101 (TemporaryAccessPassInvalid)"
      this.action = action;
      this.code = code; // the API error's name, when the server refused
    }
  }

  function apiError(body, status) {
    const err = body && typeof body === "object" ? body.error : null;
    if (err && typeof err.code === "string") {
      const known = ERROR_ACTIONS[err.code] || {};
      const number = (err.innerError && err.innerError.passgateCode) || known.number;
      const title = number ? `Error ${number} (${err.code})` : `Error ${err.code}`;
      const action = known.action || "Reload the page and try again; if it keeps failing, tell your administrator.";
      return new PageError(title, err.message || "", action, err.code);
    }
    return new PageError(
      `HTTP ${status}`, `Passgate answered with status ${status} and no error code.`,
      "Reload the page and try again; if it keeps failing, tell your administrator.",
    );
  }

  // What the browser or authenticator said, in words a person can act on.
  const BROWSER_ERRORS = {
    get: {
      NotAllowedError: ["The passkey request was cancelled or timed out, so you were not signed in.",
        "Select “Sign in with a passkey” again and confirm with your fingerprint, face, PIN or security key."],
      SecurityError: ["Your browser refused to use a passkey on this web address.",
        "Open Passgate at its usual address (https, or http://localhost) and try again."],
      NotSupportedError: ["This browser or device cannot use the kind of passkey this site asks for.",
        "Try another browser or device, or sign in with a Temporary Access Pass."],
    },
    create: {
      NotAllowedError: ["The passkey was not created: the request was cancelled or timed out.",
        "Select “Add a passkey” again and confirm with your fingerprint, face, PIN or security key."],
      InvalidStateError: ["This device or security key already holds a passkey for your account.",
        "Use the passkey you already have, or add one on another device or security key."],
      SecurityError: ["Your browser refused to create a passkey on this web address.",
        "Open Passgate at its usual address (https, or http://localhost) and try again."],
      NotSupportedError: ["This browser or device cannot create the kind of passkey this site asks for.",
        "Try another browser, your phone or a security key."],
      ConstraintError: ["This device cannot verify you (no screen lock, PIN or biometrics set up).",
        "Set up a PIN or screen lock on the device, or use your phone or a security key."],
    },
  };

  function browserError(error, kind) {
    if (error instanceof PageError) return error;
    const name = error && error.name ? error.name : "Error";
    const known = (BROWSER_ERRORS[kind] || {})[name];
    if (known) return new PageError(`Browser error (${name})`, known[0], known[1]);
    return new PageError(
      `Browser error (${name})`, (error && error.message) || "The browser stopped the passkey request.",
      "Reload the page and try again; if it keeps failing, try another browser or sign in with a Temporary Access Pass.",
    );
  }

  function showError(error, kind) {
    const alert = $("#alert");
    const problem = error instanceof PageError ? error : browserError(error, kind);
    setStatus("");
    alert.replaceChildren();
    const first = document.createElement("p");
    const title = document.createElement("strong");
    title.textContent = `${problem.title}:`;
    first.append(title, ` ${problem.message}`);
    const second = document.createElement("p");
    second.className = "action";
    second.textContent = problem.action;
    alert.append(first, second);
    alert.scrollIntoView({block: "nearest"});
  }

  function clearError() {
    $("#alert")?.replaceChildren();
  }

  function setStatus(text) {
    const status = $("#status");
    if (status) status.textContent = text;
  }

  // -- the API --------------------------------------------------------------------------------
  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: body === undefined ? {Accept: "application/json"}
          : {Accept: "application/json", "Content-Type": "application/json"},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new PageError("Network error", "Passgate could not be reached.",
        "Check your network connection and try again.");
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw apiError(data, response.status);
    return data;
  }

  // -- WebAuthn JSON helpers: the browser's own where it has them, a small fallback otherwise ----
  const b64urlToBuffer = (value) => {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  };
  const bufferToB64url = (buffer) => {
    let text = "";
    for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => ({...c, id: b64urlToBuffer(c.id)}));

  function passkeysSupported() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      throw new PageError("Browser error (PasskeysNotSupported)", "This browser cannot use passkeys.",
        "Use a current version of Chrome, Edge, Safari or Firefox, or sign in with a Temporary Access Pass.");
    }
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {...json, challenge: b64urlToBuffer(json.challenge), allowCredentials: withIds(json.allowCredentials)};
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json, challenge: b64urlToBuffer(json.challenge),
      user: {...json.user, id: b64urlToBuffer(json.user.id)},
      excludeCredentials: withIds(json.excludeCredentials),
    };
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    const r = cred.response;
    const response = {clientDataJSON: bufferToB64url(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = bufferToB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = bufferToB64url(r.authenticatorData);
      response.signature = bufferToB64url(r.signature);
      if (r.userHandle) response.userHandle = bufferToB64url(r.userHandle);
    }
    return {
      id: cred.id, rawId: bufferToB64url(cred.rawId), type: cred.type, response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
    };
  }

  // Tell the browser a passkey no longer exists here, so it can hide or remove it (WebAuthn Signal API).
  async function signalUnknown(rpId, credentialId) {
    if (!window.PublicKeyCredential || typeof PublicKeyCredential.signalUnknownCredential !== "function") return;
    try {
      await PublicKeyCredential.signalUnknownCredential({rpId, credentialId});
    } catch {
      // Best effort: the passkey is already gone on the server.
    }
  }

  function busy(element, on) {
    if (!element) return;
    element.disabled = on;
    element.setAttribute("aria-busy", on ? "true" : "false");
  }

  function localTimes(root = document) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      el.title = el.getAttribute("datetime");
      el.textContent = when.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"});
    }
  }

  // -- sign-in page ---------------------------------------------------------------------------
  function safeNext() {
    const next = new URLSearchParams(location.search).get("next");
    if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
    try {
      const url = new URL(next, location.origin);
      return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
    } catch {
      return null;
    }
  }

  // The pending authorization this sign-in is for (the marker on the way back to /oauth2/authorize): the
  // server runs Conditional Access for that app and, in a step-up, offers only what satisfies it.
  function authorizationMarker() {
    const next = safeNext();
    if (!next) return undefined;
    return new URL(next, location.origin).searchParams.get("passgate_fresh") || undefined;
  }

  function signInPage() {
    const authorization = authorizationMarker();
    const next = safeNext() || undefined;
    const usernameInput = $("#username");
    const stepUsername = $("#step-username");
    const stepMethods = $("#step-methods");
    const tapInput = $("#tap");
    const passwordInput = $("#password");
    const codeInput = $("#code");
    const stepCode = $("#step-code");
    let identified = null; // {username, displayName, methods}
    let pending = null; // the second step's token, after a right password
    let autofill = null; // {controller, done}

    // The server answers the authorize request the page was opened for (`next`) at once: `redirect` is then
    // the app itself, with its code.
    function signedIn(result) {
      setStatus("Signed in. Opening your page…");
      location.assign((result && result.redirect) || safeNext() || "/mysecurityinfo");
    }

    async function finishPasskey(cred, rpId) {
      try {
        signedIn(await api("POST", "/api/signin/passkey", {credential: credentialJSON(cred), authorization, next}));
      } catch (error) {
        // The server does not know this passkey (deleted here): let the browser forget it too.
        if (error instanceof PageError && error.code === "KeyNotFound") await signalUnknown(rpId, cred.id);
        throw error;
      }
    }

    // Passkey autofill: a conditional request waits quietly behind the username field.
    async function startAutofill() {
      if (autofill || !window.PublicKeyCredential || stepUsername.hidden) return;
      if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
      let available = false;
      try {
        available = await PublicKeyCredential.isConditionalMediationAvailable();
      } catch {
        available = false;
      }
      if (!available || autofill) return;
      const controller = new AbortController();
      const run = async () => {
        const options = await api("POST", "/api/signin/passkey/options", {authorization});
        if (controller.signal.aborted) return;
        const pending = navigator.credentials.get({
          mediation: "conditional", publicKey: requestOptions(options), signal: controller.signal,
        });
        usernameInput.dataset.passkeyAutofill = "waiting";
        const cred = await pending;
        if (controller.signal.aborted || !cred) return;
        clearError();
        await finishPasskey(cred, options.rpId);
      };
      const state = {controller, done: null};
      autofill = state;
      state.done = run().catch((error) => {
        // Autofill waits in the background: the browser ending it (aborted, no passkey chosen or none
        // available) is not a failure. A refusal by Passgate after a passkey was chosen is.
        if (controller.signal.aborted || !(error instanceof PageError)) return;
        showError(error, "get");
      }).finally(() => {
        if (autofill === state) autofill = null;
        usernameInput.dataset.passkeyAutofill = "off";
      });
    }

    // Abort the waiting autofill request before any modal passkey prompt, and wait until it has ended.
    async function stopAutofill() {
      const state = autofill;
      if (!state) return;
      autofill = null;
      state.controller.abort();
      await state.done;
    }

    async function passkeySignIn(button, username) {
      clearError();
      busy(button, true);
      try {
        passkeysSupported();
        await stopAutofill();
        const options = await api("POST", "/api/signin/passkey/options",
          username ? {username, authorization} : {authorization});
        setStatus("Follow your browser’s passkey prompt…");
        const cred = await navigator.credentials.get({publicKey: requestOptions(options)});
        await finishPasskey(cred, options.rpId);
      } catch (error) {
        showError(error, "get");
        busy(button, false);
        if (!username) startAutofill();
      }
    }

    function showMethods(found) {
      identified = found;
      stepUsername.hidden = true;
      stepMethods.hidden = false;
      $("#heading").textContent = "Sign in";
      $("#who-name").textContent = found.displayName || found.username;
      $("#who-upn").textContent = found.username;
      $("#who-initial").textContent = (found.displayName || found.username || "?").trim().charAt(0).toUpperCase();
      const hasPasskey = found.methods.includes("passkey");
      const hasTap = found.methods.includes("temporaryAccessPass");
      const hasPassword = found.methods.includes("password");
      $("#method-passkey").hidden = !hasPasskey;
      $("#tap-form").hidden = !hasTap;
      $("#password-form").hidden = !hasPassword;
      $("#no-methods").hidden = hasPasskey || hasTap || hasPassword;
      $("#step-up").hidden = !found.stepUp;
      $("#step-up").textContent = found.stepUp || "";
      if (hasTap) tapInput.focus();
      else if (hasPasskey) $("#passkey-username-first").focus();
      else if (hasPassword) passwordInput.focus();
    }

    function showUsernameStep() {
      identified = null;
      pending = null;
      stepMethods.hidden = true;
      stepCode.hidden = true;
      stepUsername.hidden = false;
      tapInput.value = "";
      passwordInput.value = "";
      clearError();
      setStatus("");
      usernameInput.focus();
      startAutofill();
    }

    $("#identify-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const username = usernameInput.value.trim();
      if (!username) {
        usernameInput.setAttribute("aria-invalid", "true");
        showError(new PageError("Username missing", "Type your username first.",
          "It looks like an email address, for example name@example.com."));
        usernameInput.focus();
        return;
      }
      usernameInput.removeAttribute("aria-invalid");
      const button = event.submitter || $("#identify-form button");
      busy(button, true);
      try {
        const found = await api("POST", "/api/signin/identify", {username, authorization});
        await stopAutofill();
        showMethods(found);
      } catch (error) {
        usernameInput.setAttribute("aria-invalid", "true");
        showError(error, "get");
        usernameInput.focus();
      } finally {
        busy(button, false);
      }
    });

    $("#tap-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const secret = tapInput.value.trim();
      if (!secret) {
        tapInput.setAttribute("aria-invalid", "true");
        showError(new PageError("Temporary Access Pass missing", "Type your Temporary Access Pass first.",
          "Your helpdesk gave it to you; it is 8 or more letters and digits."));
        tapInput.focus();
        return;
      }
      const button = event.submitter || $("#tap-form button");
      busy(button, true);
      try {
        signedIn(await api("POST", "/api/signin/tap",
          {username: identified.username, temporaryAccessPass: secret, authorization, next}));
      } catch (error) {
        tapInput.setAttribute("aria-invalid", "true");
        showError(error, "get");
        tapInput.select();
        busy(button, false);
      }
    });

    // Password, then (for users with an authenticator app) a code in a second step of the same sign-in.
    $("#password-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const password = passwordInput.value;
      if (!password) {
        passwordInput.setAttribute("aria-invalid", "true");
        showError(new PageError("Password missing", "Type your password first.",
          "Or use another way to sign in, such as a passkey."));
        passwordInput.focus();
        return;
      }
      const button = event.submitter || $("#password-form button");
      busy(button, true);
      try {
        const result = await api("POST", "/api/signin/password", {username: identified.username, password, authorization, next});
        passwordInput.value = "";
        if (result.pending) {
          pending = result.pending;
          stepMethods.hidden = true;
          stepCode.hidden = false;
          busy(button, false);
          setStatus("Password accepted. Enter the code from your authenticator app.");
          codeInput.focus();
          return;
        }
        signedIn(result);
      } catch (error) {
        passwordInput.setAttribute("aria-invalid", "true");
        showError(error, "get");
        passwordInput.select();
        busy(button, false);
      }
    });

    $("#code-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const code = codeInput.value.replace(/\s+/g, "");
      if (!/^[0-9]{6}$/.test(code)) {
        codeInput.setAttribute("aria-invalid", "true");
        showError(new PageError("Code missing", "Type the 6-digit code from your authenticator app.",
          "Open the app you set up on Security info; the code changes every 30 seconds."));
        codeInput.focus();
        return;
      }
      const button = event.submitter || $("#code-form button");
      busy(button, true);
      try {
        signedIn(await api("POST", "/api/signin/code", {pending, code, authorization, next}));
      } catch (error) {
        busy(button, false);
        // The step has ended (expired, or used): start again from the username, with the error shown.
        if (error instanceof PageError && error.code === "PendingSignInNotFound") showUsernameStep();
        else {
          codeInput.setAttribute("aria-invalid", "true");
          codeInput.select();
        }
        showError(error, "get");
      }
    });

    $("#passkey-username-first").addEventListener("click", (event) => {
      passkeySignIn(event.currentTarget, identified && identified.username);
    });
    $("#passkey-usernameless").addEventListener("click", (event) => passkeySignIn(event.currentTarget, null));
    $("#change-user").addEventListener("click", showUsernameStep);

    const preset = new URLSearchParams(location.search).get("username");
    if (preset) usernameInput.value = preset;
    startAutofill();
  }

  // -- Security info page ---------------------------------------------------------------------
  function securityInfoPage() {
    const rpId = $("#page-data").dataset.rpId;
    const nameInput = $("#passkey-name");
    const dialog = $("#delete-dialog");

    async function refresh() {
      const response = await fetch(location.pathname, {headers: {Accept: "text/html"}, credentials: "same-origin"});
      if (response.redirected && new URL(response.url).pathname !== location.pathname) {
        location.assign(response.url);
        return;
      }
      if (!response.ok) throw new PageError(`HTTP ${response.status}`, "The page could not be refreshed.",
        "Reload the page.");
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const methods = $("#methods", fresh);
      if (!methods) return;
      $("#methods").replaceWith(document.adoptNode(methods));
      const signedInWith = $("#signed-in-with", fresh);
      if (signedInWith) $("#signed-in-with").textContent = signedInWith.textContent;
      localTimes($("#methods"));
    }

    function item(element) {
      const li = element.closest("li[data-passkey-id]");
      return li && {li, id: li.dataset.passkeyId, name: li.dataset.name, credentialId: li.dataset.credentialId};
    }

    $("#add-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const name = nameInput.value.trim();
      if (!name) {
        nameInput.setAttribute("aria-invalid", "true");
        showError(new PageError("Passkey name missing", "Give the passkey a name first.",
          "Type a name such as “Work laptop” in the Passkey name field."));
        nameInput.focus();
        return;
      }
      nameInput.removeAttribute("aria-invalid");
      const button = event.submitter || $("#add-form button");
      busy(button, true);
      try {
        passkeysSupported();
        const options = await api("POST", "/api/me/passkeys/options");
        setStatus("Follow your browser’s prompt to create the passkey…");
        const cred = await navigator.credentials.create({publicKey: creationOptions(options)});
        const added = await api("POST", "/api/me/passkeys", {credential: credentialJSON(cred), displayName: name});
        await refresh();
        nameInput.value = $("#methods").dataset.nextName || "";
        setStatus(`Passkey “${added.displayName}” added.`);
      } catch (error) {
        showError(error, "create");
      } finally {
        busy(button, false);
      }
    });

    document.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const found = item(button);
      if (!found) return;
      const form = $(".rename-form", found.li);
      if (button.dataset.action === "rename") {
        clearError();
        form.hidden = false;
        $(".actions", found.li).hidden = true;
        const input = $("input", form);
        input.value = found.name;
        input.focus();
        input.select();
      } else if (button.dataset.action === "cancel-rename") {
        form.hidden = true;
        $(".actions", found.li).hidden = false;
        $("button[data-action=rename]", found.li).focus();
      } else if (button.dataset.action === "delete") {
        clearError();
        const methods = $("#methods");
        const others = methods.querySelectorAll("li[data-passkey-id]").length - 1;
        $("#delete-text").textContent =
          `“${found.name}” will be removed from your account, and you will no longer be able to sign in with it.`;
        $("#delete-last").hidden = others > 0 || methods.dataset.tapUsable === "true";
        dialog.returnValue = "";
        dialog.onclose = () => {
          if (dialog.returnValue === "delete") remove(found);
          else button.focus();
        };
        dialog.showModal();
      }
    });

    document.addEventListener("submit", async (event) => {
      const form = event.target.closest(".rename-form");
      if (!form) return;
      event.preventDefault();
      clearError();
      const found = item(form);
      const input = $("input", form);
      const name = input.value.trim();
      if (!name) {
        input.setAttribute("aria-invalid", "true");
        showError(new PageError("Passkey name missing", "The new name is empty.", "Type a name for the passkey."));
        input.focus();
        return;
      }
      const button = event.submitter || $("button[type=submit]", form);
      busy(button, true);
      try {
        const renamed = await api("PATCH", `/api/me/passkeys/${encodeURIComponent(found.id)}`, {displayName: name});
        await refresh();
        setStatus(`Passkey renamed to “${renamed.displayName}”.`);
        $(`#passkey-${CSS.escape(found.id)} button[data-action=rename]`)?.focus();
      } catch (error) {
        showError(error, "create");
        busy(button, false);
      }
    });

    async function remove(found) {
      try {
        await api("DELETE", `/api/me/passkeys/${encodeURIComponent(found.id)}`);
        await signalUnknown(rpId, found.credentialId);
        await refresh();
        setStatus(`Passkey “${found.name}” deleted.`);
        $("#add-form button").focus();
      } catch (error) {
        showError(error, "create");
      }
    }

    // -- authenticator app: scan (or type) the seed, then prove it with a current code ---------------
    let oathSecret = null;
    $("#oath-start")?.addEventListener("click", async (event) => {
      clearError();
      const button = event.currentTarget;
      busy(button, true);
      try {
        const setup = await api("POST", "/api/me/softwareoath/options");
        oathSecret = setup.secret;
        $("#oath-qr").src = setup.qrCode;
        $("#oath-secret").textContent = setup.secret.replace(/(.{4})/g, "$1 ").trim();
        $("#oath-setup").hidden = false;
        setStatus("Scan the QR code with your authenticator app, then type the code it shows.");
        $("#oath-code").focus();
      } catch (error) {
        showError(error, "create");
      } finally {
        busy(button, false);
      }
    });

    $("#oath-form")?.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const input = $("#oath-code");
      const code = input.value.replace(/\s+/g, "");
      if (!/^[0-9]{6}$/.test(code)) {
        input.setAttribute("aria-invalid", "true");
        showError(new PageError("Code missing", "Type the 6-digit code your authenticator app shows.",
          "After scanning the QR code, the app shows a new code every 30 seconds."));
        input.focus();
        return;
      }
      const button = event.submitter || $("#oath-form button");
      busy(button, true);
      try {
        const added = await api("POST", "/api/me/softwareoath",
          {secret: oathSecret, code, displayName: $("#oath-name").value.trim() || undefined});
        oathSecret = null;
        input.value = "";
        $("#oath-setup").hidden = true;
        $("#oath-qr").removeAttribute("src");
        $("#oath-secret").textContent = "";
        await refresh();
        setStatus(`Authenticator app “${added.displayName}” added.`);
      } catch (error) {
        input.setAttribute("aria-invalid", "true");
        showError(error, "create");
      } finally {
        busy(button, false);
      }
    });

    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action=delete-oath]");
      const li = button && button.closest("li[data-oath-id]");
      if (!li) return;
      clearError();
      const oathDialog = $("#oath-delete-dialog");
      $("#oath-delete-text").textContent =
        `“${li.dataset.name}” will be removed, and its codes will no longer be accepted.`;
      oathDialog.returnValue = "";
      oathDialog.onclose = async () => {
        if (oathDialog.returnValue !== "delete") return button.focus();
        try {
          await api("DELETE", `/api/me/softwareoath/${encodeURIComponent(li.dataset.oathId)}`);
          await refresh();
          setStatus(`Authenticator app “${li.dataset.name}” deleted.`);
        } catch (error) {
          showError(error, "create");
        }
      };
      oathDialog.showModal();
    });

    // -- password: set, or change with the current one (or a fresh sign-in) ----------------------------
    $("#password-form")?.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError();
      const current = $("#current-password");
      const fresh = $("#new-password");
      if (!fresh.value) {
        fresh.setAttribute("aria-invalid", "true");
        showError(new PageError("Password missing", "Type the new password.",
          "Choose at least 12 characters that are not a common password."));
        fresh.focus();
        return;
      }
      const button = event.submitter || $("#password-form button");
      busy(button, true);
      try {
        await api("POST", "/api/me/password",
          current.value ? {currentPassword: current.value, newPassword: fresh.value} : {newPassword: fresh.value});
        current.value = "";
        fresh.value = "";
        await refresh();
        setStatus("Password saved.");
      } catch (error) {
        showError(error, "create");
      } finally {
        busy(button, false);
      }
    });

    localTimes();
  }

  // -- signed out: the apps' front-channel logout frames load, then on to where the app asked -----
  function signedOutPage() {
    const next = $("#continue[data-auto-continue]");
    if (!next) return;
    const frames = Array.from(document.querySelectorAll("iframe.logout-frame"));
    let waiting = frames.length;
    let gone = false;
    const go = () => {
      if (gone) return;
      gone = true;
      location.assign(next.href);
    };
    // An app that never answers must not keep the user here.
    setTimeout(go, 3000);
    if (!waiting) go();
    frames.forEach((frame) => frame.addEventListener("load", () => {
      waiting -= 1;
      if (waiting <= 0) go();
    }));
  }

  function start() {
    const page = document.body.dataset.page;
    if (page === "signin") signInPage();
    else if (page === "securityinfo") securityInfoPage();
    else if (page === "signedout") signedOutPage();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
