# Windows build: PyInstaller one-folder app, then the Inno Setup installer, into dist\.
# Run on Windows 10/11 x64 from any folder, in PowerShell:
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
# Needs: Python 3.11+ (py launcher), Node.js with npm, Inno Setup 6 (ISCC.exe).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$started = Get-Date

if (-not (Test-Path .venv\Scripts\python.exe)) { py -3 -m venv .venv }
$python = ".venv\Scripts\python.exe"
& $python -m pip install -q --upgrade pip
& $python -m pip install -q -e . "pyinstaller>=6.22,<7"
if ($LASTEXITCODE) { throw "pip failed" }

if (Test-Path resources\web\package.json) {
    Push-Location resources\web
    if (-not (Test-Path node_modules)) { npm ci --no-audit --no-fund; if ($LASTEXITCODE) { throw "npm ci failed" } }
    npm run build; if ($LASTEXITCODE) { throw "npm run build failed" }
    Pop-Location
}

& $python -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build\pyinstaller packaging\desktop-relay.spec
if ($LASTEXITCODE) { throw "PyInstaller failed" }

$version = & $python -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])"
$iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"
if (-not (Test-Path $iscc)) { $iscc = "ISCC.exe" }  # on PATH (e.g. choco install innosetup)
& $iscc "/DAppVersion=$version" packaging\windows\desktop-relay.iss
if ($LASTEXITCODE) { throw "ISCC failed" }

$setup = Get-Item "dist\desktop-relay-$version-windows-x64-setup.exe"
$folder = (Get-ChildItem dist\desktop-relay -Recurse -File | Measure-Object Length -Sum).Sum
"one-folder: {0:N1} MB, installer: {1:N1} MB, build: {2:N0} s" -f ($folder / 1e6), ($setup.Length / 1e6), ((Get-Date) - $started).TotalSeconds
