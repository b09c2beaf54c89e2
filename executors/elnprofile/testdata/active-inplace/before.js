function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);

		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
		this.jupyterIntegrationServerEndpoint = "https://jupyterhub-demo.example.org:80";
		this.jupyterEndpoint = 'https://jupyterhub-demo.example.org/'; // set by hand
		this.showDatasetArchivingButton = false;
}
})
