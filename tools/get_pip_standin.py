"""Stand-in for pip's get-pip.py bootstrap script, which ansible-test downloads from a host this network cannot reach.

ansible-test runs it with the interpreter of a new, pip-less virtualenv and get-pip's arguments: pip install's,
plus --no-setuptools and --no-wheel. ensurepip puts the pip bundled with Python in; that pip then installs the
version asked for from PyPI.
"""

import subprocess
import sys

GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')

# In a child: ensurepip clears the pip settings (certificate, indexes) of its own process's environment.
status = subprocess.call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
if status == 0:
    status = subprocess.call(pip + ['install', '--quiet'] + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY])
if status == 0 and '--no-setuptools' in sys.argv:
    # ensurepip brings setuptools along; get-pip would not have.
    status = subprocess.call(pip + ['uninstall', '--yes', '--quiet', 'setuptools'])
sys.exit(status)
