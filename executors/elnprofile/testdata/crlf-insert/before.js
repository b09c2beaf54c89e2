function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);

// BEGIN ANSIBLE MANAGED BLOCK (sso)
//		this.singleSignOnUrlTemplate = "https://openbis-demo.example.org/Shibboleth.sso/Login?target=https://openbis-demo.example.org/shibboleth";
//		this.singleSignOnLinkLabel = "Login with SWITCHaai";
// END ANSIBLE MANAGED BLOCK (sso)
		this.hideSectionsByDefault = true;
		this.minBarcodeLength = 15;
		this.inventorySpaces = ["MATERIALS", "METHODS"];
}
})