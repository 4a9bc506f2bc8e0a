"""The astrago-deploy policy pack (see README.md); a package so tests import policy.rules."""
