"""Pure PKI: keys, CSRs, bundles. No AWS, no environment."""
