*** Settings ***
Documentation     The learned state survives power cuts: `tinytrain powercut` stops QEMU at 200 deterministic
...               instruction counts inside saves of the exported library's A/B flash slots, reboots after each,
...               and checks that every boot loads the previous or the new state bit for bit; flipped bits and
...               another model's or format's state are refused. docs/export.md, "Power cuts".
...               Run with: robot --outputdir results/robot robot_tests/powercut.robot
Library           Process
Library           String

*** Variables ***
${CLI}            import sys; from tinytrain.cli import main; sys.exit(main())

*** Test Cases ***
Two Hundred Power Cuts During Saves Lose Nothing On m4
    [Documentation]    MCUNet-5FPS at 48x48, classifier trained (scheme last): 200 cuts, 16 bit flips.
    [Timeout]    15 minutes
    ${py}=    Evaluate    sys.executable    modules=sys
    ${r}=    Run Process    ${py}    -c    ${CLI}    powercut    --model    mcunet-5fps    --scheme    last
    ...    --resolution    48    --board    m4    --cuts    200    --flips    16
    Log    ${r.stdout}
    Log    ${r.stderr}
    Should Be Equal As Integers    ${r.rc}    0
    ${last}=    Get Line    ${r.stdout.strip()}    -1
    Should Be Equal    ${last}    200 cuts: 0 lost, 0 corrupt loads
    Should Contain    ${r.stdout}    16/16 slots rejected
    Should Contain    ${r.stdout}    foreign state (fingerprint): refused, built-in weights kept
    Should Contain    ${r.stdout}    foreign state (version): refused, built-in weights kept

Bad Input Exits 2 With One Line
    ${py}=    Evaluate    sys.executable    modules=sys
    ${r}=    Run Process    ${py}    -c    ${CLI}    powercut    --model    mcunet-5fps    --scheme    last
    ...    --resolution    48    --cuts    0
    Should Be Equal As Integers    ${r.rc}    2
    Should Contain    ${r.stderr}    --cuts must be at least 1
