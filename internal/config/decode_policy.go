package config

// exposure returns a field that decodes {allow: [globs], deny: [globs]};
// example is a list shown in the hints.
func (d *decoder) exposure(dst *Exposure, example string) field {
	hint := "; write globs as a list, e.g. " + example
	return d.sub(fields{
		"allow": d.strList(&dst.Allow, hint),
		"deny":  d.strList(&dst.Deny, hint),
	}, nil)
}
