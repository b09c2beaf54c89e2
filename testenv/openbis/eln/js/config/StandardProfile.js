/*
 * A minimal StandardProfile for the openBIS stand-in: the defaults an
 * InstanceProfile.js extends. The real one (eln-lims html/js/config/
 * StandardProfile.js) sets hundreds of settings; only those the Jupyter
 * flow reads are here. Instance profiles copy this prototype with
 *   $.extend(InstanceProfile.prototype, StandardProfile.prototype, {...})
 * and call StandardProfile.prototype.init.call(this, serverFacade).
 */
function StandardProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(StandardProfile.prototype, {
	init: function(serverFacade) {
		this.serverFacade = serverFacade;
		// Unset, the ELN shows no Jupyter menu.
		this.jupyterIntegrationServerEndpoint = null;
		this.jupyterEndpoint = null;
		this.jupyterOpenbisEndpoint = null;
		this.hideSectionsByDefault = false;
		this.systemProperties = ["$ANNOTATIONS_STATE", "$FREEFORM_TABLE_STATE"];
	},
	// Internal property types carry the "$" namespace ("$NAME").
	getInternalNamespacePrefix: function() {
		return "$";
	},
	isJupyterEnabled: function() {
		return !!this.jupyterEndpoint;
	}
});
