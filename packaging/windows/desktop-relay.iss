; Inno Setup 6 script of the Windows installer. Built on Windows by packaging\windows\build.ps1,
; which makes dist\desktop-relay\ with PyInstaller first and passes the version from
; pyproject.toml: ISCC.exe /DAppVersion=0.1.0 packaging\windows\desktop-relay.iss
; Not buildable on Linux: see packaging\README.md.

#ifndef AppVersion
  #error Pass the version: ISCC.exe /DAppVersion=X.Y.Z desktop-relay.iss (build.ps1 does)
#endif

#define AppName "Desktop Relay"
#define AppExe "desktop-relay.exe"
#define Root "..\.."

[Setup]
; A fixed id: upgrades replace the installed version instead of installing beside it.
AppId={{6F1B2C1E-5B7A-4E47-9A39-3E2D4C0B7D15}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Desktop Relay developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user installs need no administrator; the dialog lets an admin install for everyone.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\dist
OutputBaseFilename=desktop-relay-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\resources\icons\desktop-relay.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; The app must not run while its files are replaced.
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The PyInstaller one-folder build: desktop-relay.exe (window), desktop-relay-cli.exe
; (console, for --headless) and _internal\ with Python, Qt, ffmpeg and the browser page.
Source: "{#Root}\dist\desktop-relay\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\{#AppName} (headless, console)"; Filename: "{app}\desktop-relay-cli.exe"; Parameters: "--headless"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
; Windows Defender Firewall asks on the first start whether browsers on the LAN may connect:
; the user answers there, the installer opens no port by itself.
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Logs, settings, certificate and token live in the user's profile (platformdirs) and stay:
; they are the user's data. Only files the app may have written beside itself go.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
