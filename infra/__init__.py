"""Infrastructure built from the resource catalogue: provisioning, templates, deploy scripts."""
