function InstanceProfile(serverFacade) {
	this.jupyterEndpoint = "x/";
}
