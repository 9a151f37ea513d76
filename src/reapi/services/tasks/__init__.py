"""The task gateway's decisions: the model catalog (schemas, prices) and the SSRF guard."""
