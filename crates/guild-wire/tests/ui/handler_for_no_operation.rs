//! The mission service's handler with every operation, and one more that is none of them.

use guild_wire::api::mission::{self as api, Handler};
use guild_wire::api::{Empty, Failure};
use guild_wire::domain::Principal;
use guild_wire::domain::mission::{Mission, NewMission};

struct Missions;

impl Handler for Missions {
    async fn create_mission(&self, _: Principal, _: NewMission) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn add_dependency(&self, _: Principal, _: api::AddDependency) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn remove_dependency(&self, _: Principal, _: api::RemoveDependency) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn check_ready(&self, _: Principal, _: api::MissionRef) -> Result<api::Readiness, Failure> {
        unimplemented!()
    }
    async fn get_parallelizable_missions(&self, _: Principal, _: api::GroupsQuery) -> Result<api::ParallelGroups, Failure> {
        unimplemented!()
    }
    async fn assign_mission(&self, _: Principal, _: api::AssignMission) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn reassign_mission(&self, _: Principal, _: api::ReassignMission) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn claim_next(&self, _: Principal, _: api::ClaimNext) -> Result<api::Claimed, Failure> {
        unimplemented!()
    }
    async fn mark_complete(&self, _: Principal, _: api::MarkComplete) -> Result<api::MissionOutcome, Failure> {
        unimplemented!()
    }
    async fn mark_failed(&self, _: Principal, _: api::MarkFailed) -> Result<api::MissionOutcome, Failure> {
        unimplemented!()
    }
    async fn cancel_mission(&self, _: Principal, _: api::CancelMission) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn archive_missions(&self, _: Principal, _: api::ArchiveMissions) -> Result<api::Archived, Failure> {
        unimplemented!()
    }
    async fn get_mission(&self, _: Principal, _: api::MissionRef) -> Result<Mission, Failure> {
        unimplemented!()
    }
    async fn list_missions(&self, _: Principal, _: api::MissionQuery) -> Result<api::MissionList, Failure> {
        unimplemented!()
    }
    async fn get_outputs(&self, _: Principal, _: api::OutputQuery) -> Result<api::Outputs, Failure> {
        unimplemented!()
    }
    async fn phase_status(&self, _: Principal, _: api::PhaseRef) -> Result<api::PhaseStatus, Failure> {
        unimplemented!()
    }
    async fn get_statistics(&self, _: Principal, _: Empty) -> Result<api::MissionStatistics, Failure> {
        unimplemented!()
    }
    async fn delete_mission(&self, _: Principal, _: api::MissionRef) -> Result<Mission, Failure> {
        unimplemented!()
    }
}

fn main() {}
