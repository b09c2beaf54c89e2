function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);
		this.jupyterEndpoint = "https://jupyterhub-demo.example.org/";
		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
		this.jupyterEndpoint = "https://jupyterhub-demo.example.org/";
		this.jupyterIntegrationServerEndpoint = "https://jupyterhub-demo.example.org:80";
		this.jupyterIntegrationServerEndpoint = "https://jupyterhub-demo.example.org:80"; this.jupyterEndpoint = "x/";
}
})
