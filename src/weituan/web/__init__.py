"""The browser UI shell: layout, home page and the pages that span apps."""
