function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);
		// BEGIN PROVISION MANAGED BLOCK (jupyter)
		this.jupyterIntegrationServerEndpoint = "https://jupyterhub.example.org:8002";
		this.jupyterEndpoint = "https://jupyterhub.example.org/";
		// END PROVISION MANAGED BLOCK (jupyter)
		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
}
})
