/*
 * The stand-in ELN page: logs in through the V3 JSON-RPC API as the ELN's
 * openbis.js facade does, keeps the session token where the ELN keeps it
 * (mainController.serverFacade), builds the profile from InstanceProfile.js
 * and runs JupyterUtil's flow from the create-notebook button.
 *
 * Query parameters: user, password (log in at once), folder, filename
 * (prefill the form), open=0 (show the hub URL instead of going there).
 * Every step is written to #status for a browser test to wait on.
 */
var mainController = null;
var profile = null;

// Util.guid as the ELN's Util has it: a random RFC 4122 version 4 UUID.
var Util = {
	guid: function() {
		return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function(c) {
			var r = Math.random() * 16 | 0;
			return (c === "x" ? r : (r & 0x3 | 0x8)).toString(16);
		});
	}
};

var ELNStandIn = new function() {
	var apiURL = "/openbis/openbis/rmi-application-server-v3.json";
	var standIn = this;

	// An openBIS object and one of its data sets, for the notebook to name:
	// the ELN starts the flow from an object's page.
	this.ownerEntity = {
		"@type": "as.dto.sample.Sample",
		"permId": { "permId": "20251201120000000-1" },
		"identifier": { "identifier": "/DEFAULT/DEFAULT/SAMPLE1" }
	};
	this.dataSets = [{
		"@type": "as.dto.dataset.DataSet",
		"permId": { "permId": "20251201120000000-2" },
		"sample": this.ownerEntity
	}];

	// The session lives where JupyterUtil reads it.
	this.newServerFacade = function() {
		var token = null;
		var facade = {
			openbisServer: { getSession: function() { return token; } },
			getSession: function() { return token; },
			// The ELN's user id is the token's prefix before its last '-'.
			getUserId: function() { return token.substring(0, token.lastIndexOf("-")); },
			setSession: function(t) { token = t; }
		};
		return facade;
	};

	this.query = function(search) {
		var params = {};
		search.replace(/^\?/, "").split("&").forEach(function(part) {
			if (!part) {
				return;
			}
			var kv = part.split("=");
			var dec = function(s) { return decodeURIComponent((s || "").replace(/\+/g, " ")); };
			params[dec(kv[0])] = dec(kv.slice(1).join("="));
		});
		return params;
	};

	this.el = function(id) { return document.getElementById(id); };

	this.status = function(text) {
		standIn.el("status").textContent = text;
	};

	this.httpError = function(step, xhr) {
		var text = "error: " + step + ": HTTP " + xhr.status + " " + (xhr.statusText || "");
		if (xhr.status === 0) {
			text += " (no answer: network, TLS or CORS failure)";
		}
		if (xhr.responseText) {
			text += ": " + xhr.responseText;
		}
		standIn.status(text);
	};

	// login posts as openbis.js's ajaxRequest does: POST, processData false,
	// dataType json, the JSON-RPC request as the body, jQuery's default
	// Content-Type. A wrong password answers result null.
	this.login = function(user, password, done) {
		standIn.status("logging in as " + user);
		$.ajax({
			url: apiURL,
			type: "POST",
			processData: false,
			dataType: "json",
			data: JSON.stringify({ "method": "login", "params": [user, password], "id": "1", "jsonrpc": "2.0" }),
			success: function(response) {
				if (response.error) {
					standIn.status("error: login: " + response.error.message);
					return;
				}
				var token = response.result;
				if (!token || token.indexOf(user) < 0) {
					standIn.status("error: login failed for " + user);
					return;
				}
				mainController.serverFacade.setSession(token);
				standIn.status("logged in as " + user);
				if (done) {
					done(token);
				}
			},
			error: function(xhr) { standIn.httpError("login", xhr); }
		});
	};

	this.createNotebook = function() {
		var folder = standIn.el("folder").value;
		var fileName = standIn.el("filename").value;
		JupyterUtil.createJupyterNotebookAndOpen(folder, fileName, standIn.dataSets, standIn.ownerEntity);
	};

	this.boot = function(location) {
		var params = standIn.query(location.search);
		mainController = { serverFacade: standIn.newServerFacade() };
		if (typeof InstanceProfile === "undefined") {
			standIn.status("error: etc/InstanceProfile.js did not load");
			return;
		}
		try {
			profile = new InstanceProfile(mainController.serverFacade);
		} catch (e) {
			standIn.status("error: InstanceProfile.js: " + e);
			return;
		}
		JupyterUtil.hooks.status = standIn.status;
		JupyterUtil.hooks.error = standIn.httpError;
		JupyterUtil.hooks.open = function(url) {
			var link = standIn.el("hub-link");
			link.href = url;
			link.textContent = url;
			link.hidden = false;
			if (params.open === "0") {
				return;
			}
			// The ELN opens a new tab (window.open(url, '_blank')); headless
			// browsers block pop-ups, so the stand-in navigates this window.
			standIn.status("opening " + url);
			location.assign(url);
		};
		// The ELN's defaults before it had a form: folder "openbis", the
		// notebook named after the first data set.
		standIn.el("folder").value = params.folder || "openbis";
		standIn.el("filename").value = params.filename || standIn.dataSets[0].permId.permId;

		var button = standIn.el("create-notebook");
		button.addEventListener("click", function() { standIn.createNotebook(); });
		standIn.el("login-form").addEventListener("submit", function(ev) {
			ev.preventDefault();
			standIn.login(standIn.el("user").value, standIn.el("password").value, function() {
				button.disabled = !profile.jupyterEndpoint;
			});
		});

		if (!profile.jupyterEndpoint || !profile.jupyterIntegrationServerEndpoint) {
			standIn.status("error: Jupyter is not configured in InstanceProfile.js");
			return;
		}
		if (params.user) {
			standIn.el("user").value = params.user;
			standIn.login(params.user, params.password || "", function() { button.disabled = false; });
			return;
		}
		standIn.status("not logged in");
	};
};

$(function() { ELNStandIn.boot(window.location); });
