"""myproject: a bookmark keeper whose records get compiled persist codecs."""
