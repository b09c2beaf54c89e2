$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);
/*
// BEGIN PROVISION MANAGED BLOCK (jupyter)
		this.jupyterEndpoint = "https://old.example.org/";
// END PROVISION MANAGED BLOCK (jupyter)
*/
		this.hideSectionsByDefault = true;
	}
});
