// Passkeys: registering one on the profile page, verifying a request with one, signing in with one.
// The server sends WebAuthn options as JSON (binary fields in base64url); the browser's answer
// goes back in a hidden form field, and the form is submitted as usual.
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: toBytes(d.id), transports: d.transports };
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    if (!options.allowCredentials.length) { delete options.allowCredentials; }
    return options;
  }

  function credentialJson(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) { response.userHandle = toB64url(r.userHandle); }
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
    });
  }

  function fetchOptions(form, url) {
    var token = form.querySelector("input[name=csrf_token]").value;
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, "Accept": "application/json" },
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          throw new Error(body.error || "The server refused (HTTP " + response.status + "). Reload the page.");
        }
        return body;
      });
    });
  }

  function showError(form, error) {
    var box = form.querySelector("[data-passkey-error]");
    var text = error && error.name === "NotAllowedError"
      ? "The passkey prompt was cancelled or timed out. Try again."
      : (error && error.message) || String(error);
    if (box) { box.textContent = text; box.hidden = false; }
  }

  function unsupported(form) {
    if (window.PublicKeyCredential && navigator.credentials) { return false; }
    showError(form, new Error("This browser cannot use passkeys here. Passkeys need a current " +
      "browser and a secure address (https, or http://localhost)."));
    return true;
  }

  // A fresh assertion with a passkey the user has, for a change that needs proof; resolves
  // at once when the form asks for none.
  function prove(form) {
    var field = form.querySelector("[data-passkey-proof]");
    var url = form.getAttribute("data-proof-options-url");
    if (!field || !url || field.value) { return Promise.resolve(); }
    return fetchOptions(form, url)
      .then(function (json) { return navigator.credentials.get({ publicKey: requestOptions(json) }); })
      .then(function (credential) { field.value = credentialJson(credential); });
  }

  var register = document.querySelector("form[data-passkey-register]");
  if (register) {
    register.addEventListener("submit", function (event) {
      var field = register.querySelector("[data-passkey-credential]");
      if (field.value) { return; }
      event.preventDefault();
      if (unsupported(register)) { return; }
      prove(register)
        .then(function () { return fetchOptions(register, register.getAttribute("data-options-url")); })
        .then(function (json) { return navigator.credentials.create({ publicKey: creationOptions(json) }); })
        .then(function (credential) {
          field.value = credentialJson(credential);
          HTMLFormElement.prototype.submit.call(register);  // a field named "submit" hides the method
        })
        .catch(function (error) { showError(register, error); });
    });
  }

  // Forms whose change needs proof (messaging preferences, a new password, removing a passkey):
  // the proof first.
  document.querySelectorAll("form[data-prove-first][data-proof-options-url]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var field = form.querySelector("[data-passkey-proof]");
      if (field.value) { return; }
      event.preventDefault();
      if (unsupported(form)) { return; }
      prove(form)
        .then(function () { HTMLFormElement.prototype.submit.call(form); })
        .catch(function (error) { showError(form, error); });
    });
  });

  // Verifying asks for the passkey; signed out, denying does too (the passkey is the only
  // proof of who answers).
  var answer = document.querySelector("form[data-answer-form][data-passkey-options-url]");
  if (answer) {
    answer.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      var field = answer.querySelector("[data-passkey-credential]");
      var decision = submitter && submitter.getAttribute("value");
      var needsPasskey = decision === "verify" ||
        (decision === "deny" && answer.hasAttribute("data-signed-out"));
      if (!needsPasskey || field.value) { return; }
      event.preventDefault();
      if (unsupported(answer)) { return; }
      fetchOptions(answer, answer.getAttribute("data-passkey-options-url"))
        .then(function (json) { return navigator.credentials.get({ publicKey: requestOptions(json) }); })
        .then(function (credential) {
          field.value = credentialJson(credential);
          var chosen = document.createElement("input");
          chosen.type = "hidden";
          chosen.name = "decision";
          chosen.value = decision;
          answer.appendChild(chosen);
          HTMLFormElement.prototype.submit.call(answer);
        })
        .catch(function (error) { showError(answer, error); });
    });
  }

  // Signing in with a passkey: the browser offers its passkeys for this site in the email
  // field's autofill where it can (conditional mediation), and the button asks at once.
  var signIn = document.querySelector("form[data-passkey-sign-in]");
  if (signIn) {
    var signInField = signIn.querySelector("[data-passkey-credential]");
    var url = signIn.getAttribute("data-options-url");
    var pending = null;  // the autofill's request: {controller, settled}

    var signInWith = function (credential) {
      signInField.value = credentialJson(credential);
      HTMLFormElement.prototype.submit.call(signIn);
    };

    var offerInAutofill = function () {
      var controller = new AbortController();
      var settled = fetchOptions(signIn, url)
        .then(function (json) {
          return navigator.credentials.get({ publicKey: requestOptions(json),
                                             mediation: "conditional",
                                             signal: controller.signal });
        })
        .then(function (credential) { if (credential) { signInWith(credential); } })
        .catch(function () { /* set aside for the button, or not offered: nothing to say */ });
      pending = { controller: controller, settled: settled };
    };

    if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) { offerInAutofill(); }
      });
    }

    signIn.addEventListener("submit", function (event) {
      if (signInField.value) { return; }
      event.preventDefault();
      if (unsupported(signIn)) { return; }
      var before = Promise.resolve();
      if (pending) {
        pending.controller.abort();
        before = pending.settled;
        pending = null;
      }
      before
        .then(function () { return fetchOptions(signIn, url); })
        .then(function (json) { return navigator.credentials.get({ publicKey: requestOptions(json) }); })
        .then(signInWith)
        .catch(function (error) { showError(signIn, error); });
    });
  }
}());
