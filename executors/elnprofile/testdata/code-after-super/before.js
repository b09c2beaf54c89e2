$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){ StandardProfile.prototype.init.call(this, serverFacade); this.a = 1; }
});
