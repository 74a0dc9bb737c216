*** Settings ***
Documentation     The emulated boards: boot, determinism, faults, hangs, SRAM overflow.
...               Run with: robot --outputdir results/robot robot_tests
Library           emulation.robot.EmulationLibrary

*** Test Cases ***
Self Test Boots On m7
    Boots And Agrees    m7

Self Test Boots On m4
    Boots And Agrees    m4

Self Test Boots On stm32f405
    Boots And Agrees    stm32f405

Two Runs Give Identical Instruction Counts
    ${first}=     Run Self Test    m7
    ${second}=    Run Self Test    m7
    Instruction Counts Should Be Identical    ${first}    ${second}

A Fault Gives A Readable Report And A Non-Zero Exit
    Run Self Test    m4    fault
    Status Should Be    fault
    Exit Code Should Be    101
    Fault Report Should Mention    UNDEFINSTR
    Fault Report Should Mention    main+
    Output Should Contain    "ev":"fault"

A Bus Fault Names The Address
    Run Self Test    stm32f405    busfault
    Status Should Be    fault
    Fault Report Should Mention    BFAR=0xe0100000
    Fault Report Should Mention    PRECISERR

A Hang Ends In A Timeout Report
    Run Self Test    m7    hang    timeout=2
    Status Should Be    timeout
    Message Should Contain    timed out after 2 s
    Message Should Contain    about to hang

An SRAM Overflow Gives The Clear Error
    ${msg}=    Build Self Test Should Fail With    m7    too-big    does not fit: needs
    Should Contain    ${msg}    board `m7` has 327680

A Non-Zero Status Is Reported
    Run Self Test    m4    exit7
    Status Should Be    failed
    Exit Code Should Be    7

Semihosting File I/O Round Trip
    Run Self Test    m7    file-io
    Exit Code Should Be    0
    Metric Should Be    file_len    200
    Metric Should Be    file_sum    19900

*** Keywords ***
Boots And Agrees
    [Arguments]    ${board}
    Run Self Test    ${board}    profile=${TRUE}
    Status Should Be    ok
    Exit Code Should Be    0
    Output Should Contain    selftest on ${board}
    Metric Should Be    dot_s8_agree    1
    Metric Should Be Below    instr_per_mac_smlad    3
    Phase Instructions Should Be Below    dot_s8_smlad    4000
    Peak SRAM Should Be Below    16384
