function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);

		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
		this.jupyterEndpoint = "https://jupyterhub-demo.example.org/";
}
})
