# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""One way for the modules to replace a file: a reader never sees it half written."""

from __future__ import annotations

import os
import tempfile


def write_atomic(module, path, data, mode=None):
    """Replaces path with data (bytes or str, UTF-8) through a temporary file in its folder and atomic_move.

    mode, when given, is set before the rename; otherwise atomic_move keeps the mode of the file it replaces.
    The module removes the temporary file when it exits or fails; a killed run leaves it, never a half-written file.
    The data reaches the disk before the rename and the rename before the return, so a power cut leaves the old
    file or the new one, never an empty one.
    """
    folder, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix='.%s.' % name, suffix='.tmp')
    module.add_cleanup_file(temporary)
    with os.fdopen(descriptor, 'wb') as staged:
        staged.write(data if isinstance(data, bytes) else data.encode('utf-8'))
        staged.flush()
        os.fsync(staged.fileno())
    if mode is not None:
        os.chmod(temporary, mode)
    module.atomic_move(temporary, path)
    folder_descriptor = os.open(folder or '.', os.O_RDONLY)
    try:
        os.fsync(folder_descriptor)
    finally:
        os.close(folder_descriptor)
