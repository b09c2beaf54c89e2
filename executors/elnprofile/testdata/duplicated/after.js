function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);
		this.jupyterEndpoint = "https://jupyterhub.example.org/";
		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
		this.jupyterIntegrationServerEndpoint = "https://jupyterhub.example.org:8002";
}
})
