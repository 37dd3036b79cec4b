# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Shared by the modules that edit an Nginx file; its options are documented in doc_fragments/nginx_file_edit.py.

"""How an Nginx file is changed: in memory first; then - when the deploy lock given holds this run (the fence) - a
temporary file in the same folder, atomic_move, the configuration test and the reload; when either fails, the
original is put back byte for byte."""

from __future__ import annotations

import os
import secrets
import shlex

from ansible_collections.fleet.deployer.plugins.module_utils.atomic_file import write_atomic
from ansible_collections.fleet.deployer.plugins.module_utils.deploy_lock_file import fence_refusal, guarded, read_lock
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import NginxConfError

FILE_EDIT_ARGUMENT_SPEC = dict(
    path=dict(type='path', required=True),
    test_command=dict(type='str', default='nginx -t'),
    reload=dict(type='bool', default=False),
    reload_command=dict(type='str', default='nginx -s reload'),
    backup=dict(type='bool', default=False),
    lock=dict(type='dict', options=dict(path=dict(type='path', required=True),
                                        run_id=dict(type='str', required=True))),
)


def write_checked(module, path, content):
    """Replace path atomically with content, then test and reload.

    On failure the original file is back in place and the failure is returned for fail_json.
    """
    params = module.params
    folder, name = os.path.split(path)
    # A second name for the original inode: renaming it back restores content, owner, mode and mtime at once.
    original_link = os.path.join(folder, '.%s.%s.orig' % (name, secrets.token_hex(6)))
    try:
        os.link(path, original_link)
    except OSError as error:
        module.fail_json(msg='cannot keep the original of %s to restore it if needed: %s' % (path, error))
    module.add_cleanup_file(original_link)
    write_atomic(module, path, content)

    checks = [('configuration test', params['test_command'])]
    if params['reload']:
        checks.append(('reload', params['reload_command']))
    for what, command in checks:
        if not command:
            continue
        rc, stdout, stderr = module.run_command(shlex.split(command))
        if rc != 0:
            os.rename(original_link, path)
            return dict(msg='The %s failed (%s, rc=%d), so %s was put back as it was: %s'
                            % (what, command, rc, path, (stderr or stdout).strip()),
                        rc=rc, stdout=stdout, stderr=stderr)
    return None


def edit_file(module, edit):
    """Bring the file of the path option to edit(its text), with diff, check mode and backup, and exit the module.

    edit(text) returns the new text and a dict of values to return, or raises NginxConfError naming what it refuses;
    the text is decoded with surrogateescape, so bytes that are not UTF-8 go back as they were.
    """
    params = module.params
    path = os.path.realpath(params['path'])
    if not os.path.isfile(path):
        module.fail_json(msg='path %s does not exist or is not a file' % params['path'])

    with open(path, 'rb') as conf_file:
        original = conf_file.read()
    try:
        after, returned = edit(original.decode('utf-8', 'surrogateescape'))
    except NginxConfError as error:
        module.fail_json(msg='%s: %s' % (path, error))

    new = after.encode('utf-8', 'surrogateescape')
    result = dict(returned, changed=new != original)
    if module._diff:
        # Bytes that are not UTF-8 (say a latin-1 comment) cannot go into the JSON result; show them replaced.
        result['diff'] = dict(before=original.decode('utf-8', 'replace'), after=new.decode('utf-8', 'replace'),
                              before_header=path, after_header=path)
    if not result['changed'] or module.check_mode:
        module.exit_json(**result)

    if params['lock'] is None:
        failure = write_backed_up(module, path, new, result)
    else:
        failure = write_fenced(module, path, new, result)
    if failure:
        module.fail_json(**failure)
    module.exit_json(**result)


def write_backed_up(module, path, new, result):
    """write_checked, with the backup the task asked for (removed again when the write fails)."""
    if module.params['backup']:
        result['backup_file'] = module.backup_local(path)
    failure = write_checked(module, path, new)
    if failure and module.params['backup']:
        os.remove(result['backup_file'])  # a failed task leaves the folder as it found it
    return failure


def write_fenced(module, path, new, result):
    """write_backed_up only while the deploy lock holds this run; the lock's guard is held shared until the reload
    is done, so no other run takes the lock between the check and the write."""
    fence = module.params['lock']
    try:
        with guarded(fence['path'], exclusive=False):
            refusal = fence_refusal(read_lock(fence['path']), fence['run_id'], fence['path'])
            if not refusal:
                return write_backed_up(module, path, new, result)
    except OSError as error:
        refusal = 'cannot read the deploy lock %s: %s' % (fence['path'], error)
    return dict(msg='%s was left unchanged: this edit is made only under the deploy lock of run %s, and %s.'
                    % (path, fence['run_id'], refusal))
