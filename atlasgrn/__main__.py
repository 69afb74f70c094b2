"""``python -m atlasgrn`` is the ``atlasgrn`` command."""

import sys

from .cli import main

sys.exit(main())
